//! Proves the stack's Chromium is real: chromiumoxide loads a page served on loopback,
//! evaluates JavaScript in it and reads the DOM that the page's script built.

use anyhow::{Context, Result};
use homestream_tests::StackEnv;
use homestream_tests::chromium::HeadlessBrowser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const PAGE: &str = r#"<!doctype html><html><head><title>Listings</title></head><body>
<ul id="results"></ul>
<script>
  for (const [id, price] of [["a1", "£1,200 pcm"], ["a2", "£350 pw"]]) {
    const li = document.createElement("li");
    li.dataset.id = id;
    li.textContent = price;
    document.getElementById("results").appendChild(li);
  }
</script></body></html>"#;

/// Serves `PAGE` to every connection on an ephemeral loopback port.
async fn serve_page() -> Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0_u8; 4096];
                let _ = socket.read(&mut request).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{PAGE}",
                    PAGE.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    Ok(format!("http://{addr}/"))
}

#[tokio::test]
async fn chromium_renders_a_page_and_evaluates_javascript() -> Result<()> {
    let env = StackEnv::load()?;
    let url = serve_page().await?;
    let browser = HeadlessBrowser::launch(&env).await?;
    let page = browser
        .browser
        .new_page(url.as_str())
        .await
        .context("opening the page")?;
    page.wait_for_navigation().await?;

    let title: String = page.evaluate("document.title").await?.into_value()?;
    assert_eq!(title, "Listings");
    let ids: Vec<String> = page
        .evaluate("[...document.querySelectorAll('#results li')].map(li => li.dataset.id)")
        .await?
        .into_value()?;
    assert_eq!(ids, ["a1", "a2"]);
    let second = page.find_element("#results li:nth-child(2)").await?;
    assert_eq!(second.inner_text().await?.as_deref(), Some("£350 pw"));

    browser.close().await
}
