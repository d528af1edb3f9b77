"""Packs what a GPU machine without network or package registry needs into ``.gpu/`` (git ignores it): the default
backbone as an fp16 copy inside a Hugging Face cache, so that ``HF_HOME=.gpu/hf HF_HUB_OFFLINE=1`` loads it by its
usual name (tests and benchmarks unchanged), and the SuperGLUE folder as one compressed file.

    python -m benchmarks.gpu_carry --data-dir ../shared/superglue

Then carry ``.gpu`` and run ``bash benchmarks/gpu_session.sh check`` (or ``grid``) there. Everything that travels
must stay under 64 MiB here (the working tree included): the fp16 backbone is about 45 MB, the data about 2 MB.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import tarfile
from pathlib import Path

from dp_core.backbone import DEFAULT_BACKBONE, load_backbone


def write_hf_cache(hub_dir: Path, repo_id: str) -> Path:
    """The backbone where ``huggingface_hub`` looks for ``repo_id`` offline: snapshots/<revision>/ and refs/main."""
    backbone = load_backbone(DEFAULT_BACKBONE, device="cpu")
    staging = hub_dir / "staging"
    shutil.rmtree(staging, ignore_errors=True)
    backbone.model.half().save_pretrained(staging)
    backbone.tokenizer.save_pretrained(staging)
    revision = hashlib.sha1((staging / "model.safetensors").read_bytes()).hexdigest()
    repo = hub_dir / f"models--{repo_id.replace('/', '--')}"
    shutil.rmtree(repo, ignore_errors=True)
    (repo / "snapshots").mkdir(parents=True)
    staging.rename(repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    return repo


def folder_size(path: Path) -> int:
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="the SuperGLUE folder")
    parser.add_argument("--output", default=".gpu")
    args = parser.parse_args()
    output = Path(args.output)
    output.mkdir(exist_ok=True)
    write_hf_cache(output / "hf" / "hub", DEFAULT_BACKBONE)
    with tarfile.open(output / "superglue.tar.xz", "w:xz") as archive:
        archive.add(args.data_dir, arcname="superglue")
    tracked = subprocess.run(["git", "ls-files", "-z"], capture_output=True, check=True).stdout.split(b"\0")
    tree = sum(Path(name.decode()).stat().st_size for name in tracked if name and Path(name.decode()).is_file())
    total = tree + folder_size(output)
    print(f"{output}: {folder_size(output) / 2**20:.1f} MiB; with the tracked tree {total / 2**20:.1f} MiB "
          f"(the device takes 64 MiB){' -- too big' if total > 64 * 2**20 else ''}")


if __name__ == "__main__":
    main()
