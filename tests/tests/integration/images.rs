//! Keeps `images/*/Containerfile` and the images `make images` pushed equivalent: for
//! each image, the last stage's ENTRYPOINT, USER, ENV and LABEL are in the image's
//! config, every COPY destination is in its files (and nothing else in the `FROM
//! scratch` ones), and the binaries copied in are static (no ELF interpreter).
//! The images come from the stack's registry; run `make images` first.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail, ensure};
use homestream_tests::cache_tool;
use serde_json::Value;

const IMAGES: [&str; 4] = ["operator", "transformer", "scraper", "pause"];

/// What the last stage of a Containerfile sets.
#[derive(Debug, Default)]
struct LastStage {
    from: String,
    copy_destinations: Vec<String>,
    env: Vec<(String, String)>,
    labels: Vec<(String, String)>,
    user: String,
    entrypoint: Vec<String>,
}

/// Reads the last stage the way images/build does (one `KEY=VALUE` per ENV or LABEL,
/// one source per COPY, ENTRYPOINT in exec form).
fn parse_last_stage(text: &str) -> Result<LastStage> {
    let mut lines = Vec::new();
    let mut pending = String::new();
    for raw in text.lines() {
        if raw.trim_start().starts_with('#') {
            continue;
        }
        match raw.trim_end().strip_suffix('\\') {
            Some(head) => pending.push_str(head),
            None => {
                pending.push_str(raw);
                if !pending.trim().is_empty() {
                    lines.push(std::mem::take(&mut pending));
                }
                pending.clear();
            }
        }
    }
    let last_from = lines
        .iter()
        .rposition(|l| l.trim_start().to_ascii_uppercase().starts_with("FROM "))
        .context("no FROM")?;
    let mut stage = LastStage::default();
    for line in &lines[last_from..] {
        let line = line.trim();
        let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        let pair = || -> Result<(String, String)> {
            let (key, value) = rest.split_once('=').context("not KEY=VALUE")?;
            Ok((key.to_owned(), value.trim_matches('"').to_owned()))
        };
        match word.to_ascii_uppercase().as_str() {
            "FROM" => stage.from = rest.split_whitespace().next().unwrap_or("").to_owned(),
            "COPY" => {
                let dest = rest
                    .split_whitespace()
                    .next_back()
                    .context("COPY without a destination")?;
                stage
                    .copy_destinations
                    .push(dest.trim_start_matches('/').to_owned());
            }
            "ENV" => stage.env.push(pair()?),
            "LABEL" => stage.labels.push(pair()?),
            "USER" => stage.user = rest.to_owned(),
            "ENTRYPOINT" => stage.entrypoint = serde_json::from_str(rest)?,
            "WORKDIR" => {}
            other => bail!("{other} in the last stage (images/build refuses it)"),
        }
    }
    Ok(stage)
}

fn repo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The stack's registry: `HOMESTREAM_REGISTRY`, else 127.0.0.1:15000 shifted by
/// `HOMESTREAM_PORT_OFFSET` (tests/env/lib.sh's REGISTRY_PORT).
fn registry() -> Result<String> {
    if let Ok(registry) = std::env::var("HOMESTREAM_REGISTRY") {
        return Ok(registry);
    }
    let offset: u32 = std::env::var("HOMESTREAM_PORT_OFFSET")
        .unwrap_or_else(|_| "0".into())
        .parse()
        .context("HOMESTREAM_PORT_OFFSET is not a number")?;
    Ok(format!("127.0.0.1:{}", 15000 + offset))
}

fn crane(args: &[&str]) -> Result<Vec<u8>> {
    let out = Command::new(cache_tool("crane")?).args(args).output()?;
    ensure!(
        out.status.success(),
        "crane {} failed: {}\nIs the image built and the registry up? Run `make images`.",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(out.stdout)
}

/// `crane export REF - | tar ARGS`: the flattened filesystem of the image through tar.
fn export_through_tar(reference: &str, tar_args: &[&str]) -> Result<Vec<u8>> {
    let mut export = Command::new(cache_tool("crane")?)
        .args(["export", reference, "-"])
        .stdout(Stdio::piped())
        .spawn()?;
    let tar = Command::new("tar")
        .args(tar_args)
        .stdin(export.stdout.take().context("no stdout")?)
        .output()?;
    ensure!(export.wait()?.success(), "crane export {reference} failed");
    ensure!(tar.status.success(), "tar {tar_args:?} failed");
    Ok(tar.stdout)
}

/// Does this ELF executable ask for a dynamic loader (a PT_INTERP program header)?
fn has_interpreter(elf: &[u8]) -> Result<bool> {
    ensure!(
        elf.len() > 0x40 && elf.starts_with(b"\x7fELF") && elf[4] == 2,
        "not a 64-bit ELF file"
    );
    let u16_at = |at: usize| u16::from_le_bytes([elf[at], elf[at + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into()?) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    const PT_INTERP: u32 = 3;
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        let bytes = elf
            .get(at..at + 4)
            .context("program header out of the file")?;
        if u32::from_le_bytes(bytes.try_into()?) == PT_INTERP {
            return Ok(true);
        }
    }
    Ok(false)
}

fn check_image(image: &str) -> Result<()> {
    let containerfile = repo_dir().join("images").join(image).join("Containerfile");
    let stage = parse_last_stage(&std::fs::read_to_string(&containerfile)?)
        .with_context(|| containerfile.display().to_string())?;
    let reference = format!(
        "{}/homestream-{image}:{}",
        registry()?,
        env!("CARGO_PKG_VERSION")
    );

    let config: Value = serde_json::from_slice(&crane(&["config", &reference])?)?;
    ensure!(
        config["os"] == "linux" && config["architecture"] == "amd64",
        "{reference}: platform is not linux/amd64"
    );
    let c = &config["config"];
    ensure!(
        c["Entrypoint"] == serde_json::json!(stage.entrypoint),
        "{reference}: Entrypoint {} != {:?}",
        c["Entrypoint"],
        stage.entrypoint
    );
    ensure!(
        c["User"] == stage.user.as_str(),
        "{reference}: User {} != {}",
        c["User"],
        stage.user
    );
    let env: Vec<&str> = c["Env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for (key, value) in &stage.env {
        let entry = format!("{key}={value}");
        ensure!(
            env.contains(&entry.as_str()),
            "{reference}: Env {env:?} lacks {entry}"
        );
    }
    for (key, value) in &stage.labels {
        ensure!(
            c["Labels"][key] == value.as_str(),
            "{reference}: label {key} is {}, not {value}",
            c["Labels"][key]
        );
    }

    let listing = String::from_utf8(export_through_tar(&reference, &["-tv"])?)?;
    // Members as tar names them ("./usr/..." from mmdebstrap, "pause" from images/build),
    // directories left out: `-rwxr-xr-x 0/0 18064 1970-01-01 00:00 pause`.
    let members: Vec<&str> = listing
        .lines()
        .filter(|line| !line.starts_with('d'))
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let name = fields.nth(5)?;
            // The name starts there; a symbolic link's line goes on with " -> target".
            let start = name.as_ptr() as usize - line.as_ptr() as usize;
            Some(line[start..].split(" -> ").next().unwrap_or(name))
        })
        .collect();
    let files: BTreeSet<&str> = members.iter().map(|m| m.trim_start_matches("./")).collect();
    let copied: BTreeSet<&str> = stage.copy_destinations.iter().map(String::as_str).collect();
    if stage.from == "scratch" {
        ensure!(
            files == copied,
            "{reference}: files {files:?}, the Containerfile copies {copied:?}"
        );
    } else {
        ensure!(
            copied.is_subset(&files),
            "{reference}: lacks some of {copied:?}"
        );
        for (_, value) in stage
            .env
            .iter()
            .filter(|(key, _)| key == "HOMESTREAM_CHROMIUM")
        {
            ensure!(
                files.contains(value.trim_start_matches('/')),
                "{reference}: no {value} in the image"
            );
        }
    }

    for member in members
        .iter()
        .filter(|m| copied.contains(m.trim_start_matches("./")))
    {
        let content = export_through_tar(&reference, &["-xO", *member])?;
        if content.starts_with(b"\x7fELF") {
            ensure!(
                !has_interpreter(&content)?,
                "{reference}: /{member} is dynamically linked"
            );
        }
    }
    Ok(())
}

#[test]
fn built_images_match_their_containerfiles() {
    let failures: Vec<String> = IMAGES
        .iter()
        .filter_map(|image| check_image(image).err().map(|e| format!("{image}: {e:#}")))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn images_build_refuses_a_run_in_the_last_stage() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("homestream-images-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("Containerfile");
    std::fs::File::create(&file)?.write_all(
        b"FROM debian:bookworm-slim AS build\nRUN true\n\nFROM scratch\nCOPY --from=build /pause /pause\nRUN chmod 0700 /pause\nUSER 1:1\nENTRYPOINT [\"/pause\"]\n",
    )?;
    let script = repo_dir().join("images/build");
    let out = Command::new("bash")
        .arg("-c")
        .arg(r#"source "$1" && parse_containerfile "$2""#)
        .arg("bash")
        .arg(&script)
        .arg(&file)
        .output()?;
    std::fs::remove_dir_all(&dir)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success(),
        "images/build accepted a RUN in the last stage"
    );
    ensure!(
        stderr.contains(":6: RUN in the last stage"),
        "unexpected error: {stderr}"
    );
    Ok(())
}
