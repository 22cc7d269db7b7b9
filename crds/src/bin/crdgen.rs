//! Writes the CRDs of the homestream API to `manifests/crds/` (or the directory given
//! as the only argument), one file per kind.

use std::path::PathBuf;

use anyhow::Context;
use homestream_crds::generate;

fn main() -> anyhow::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../manifests/crds"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for (file, crd) in generate::crds() {
        let path = dir.join(file);
        std::fs::write(&path, generate::to_yaml(&crd)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
