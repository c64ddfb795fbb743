"""Throughput of the off-the-shelf models: our code path beside the raw library call, same inputs, same run.

Measured per model (model loading excluded on both sides):

* ``compute``: ``Catalog.compute_embeddings(model, all=True)`` — reading rows, decoding images in
  threads, batching, the model, and writing vectors in transactions — against a plain loop of the
  library on the same files or texts (no catalog): ``SentenceTransformer.encode`` for
  all-minilm-l6-v2, open_clip ``preprocess`` + ``encode_image`` for clip-vit-b-32, and
  ``color_texture.describe`` over ``Image.open`` for color-texture.
* ``query``: ``Catalog.encode_query(text=...)`` one prompt at a time against the raw single call.

CLIP runs the real ViT-B-32 architecture with random weights (saved to a temporary checkpoint and
loaded through the same path as real weights): throughput depends on the architecture, not on the
weights. The two sides run alternately (5 rounds; 3 for CLIP images); the table shows each side's best
throughput and the median of the per-round speed ratios ours/raw: near 1.0 means the catalog adds
little; above 1.0 it is faster (threaded decoding, JPEG draft decoding).

Usage: python tools/bench_models.py [--images 1000] [--clip-images 64] [--texts 300] [--device auto]
       [--skip-clip]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from catalog import Catalog  # noqa: E402
from catalog.models import color_texture  # noqa: E402
from catalog.models.encoders import loader  # noqa: E402
from catalog.models.encoders.clip import quiet_loading  # noqa: E402
from catalog.models.registry import get_spec  # noqa: E402
from catalog.models.torch_env import import_open_clip, import_sentence_transformers, import_torch  # noqa: E402


def make_images(folder: Path, n: int, size=(320, 240)) -> list[Path]:
    """Deterministic photo-sized JPEGs with shapes, gradients and noise."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        base = rng.integers(0, 255, 3)
        grad = np.linspace(0, 1, size[0])[None, :, None]
        arr = (base * (0.4 + 0.6 * grad) + rng.normal(0, 12, (size[1], size[0], 3))).clip(0, 255).astype(np.uint8)
        img = Image.fromarray(arr)
        d = ImageDraw.Draw(img)
        for _ in range(4):
            x, y = rng.integers(0, size[0] - 40), rng.integers(0, size[1] - 40)
            d.ellipse([x, y, x + rng.integers(20, 80), y + rng.integers(20, 80)], fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
        p = folder / f"img{i:05d}.jpg"
        img.save(p, quality=90)
        paths.append(p)
    return paths


def load_texts(n: int) -> list[str]:
    sample = ROOT / "sample_data" / "texts.ndjson"
    texts = []
    if sample.exists():
        with open(sample) as fh:
            texts = [json.loads(line)["text"] for line in fh if line.strip()]
    rng = np.random.default_rng(1)
    words = "the a quick brown fox jumps over lazy dog star galaxy recipe bread match team garden rose".split()
    while len(texts) < n:
        texts.append(" ".join(rng.choice(words, 12)))
    return texts[:n]


def _seconds(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def paired(ours_fn, raw_fn, rounds=5) -> tuple[float, float, float]:
    """Best time of each and the median per-round speed ratio ours/raw.

    The two run alternately, so a change of machine load (this machine is shared) hits both alike;
    the median of the per-round ratios is what the table reports.
    """
    ours, raw = [], []
    for _ in range(rounds):
        ours.append(_seconds(ours_fn))
        raw.append(_seconds(raw_fn))
    ratios = sorted(r / o for o, r in zip(ours, raw))
    return min(ours), min(raw), ratios[len(ratios) // 2]


def catalog_with(tmp: Path, name: str, images=(), texts=()) -> Catalog:
    cat = Catalog(tmp / f"{name}.duckdb")
    paths = list(images)
    if texts:
        rec = tmp / f"{name}-texts.ndjson"
        with open(rec, "w") as fh:
            for i, t in enumerate(texts):
                fh.write(json.dumps({"global_key": f"t{i}", "text": t}) + "\n")
        paths.append(rec)
    if paths:
        cat.import_datarows(paths)
    return cat


def row(model, what, n, measured, raw_name):
    ours_s, raw_s, ratio = measured
    return {"model": model, "what": what, "n": n, "ours_per_s": n / ours_s, "raw_per_s": n / raw_s, "ratio": ratio,
            "baseline": raw_name}


def bench_color_texture(tmp, paths):
    cat = catalog_with(tmp, "ct", images=paths)
    cat.compute_embeddings("color-texture")  # warm-up (file cache, threads)
    m = paired(lambda: cat.compute_embeddings("color-texture", all=True),
               lambda: [color_texture.describe(Image.open(p).convert("RGB")) for p in paths])
    return [row("color-texture", "images, compute", len(paths), m, "describe(Image.open(p)) loop")]


def bench_minilm(tmp, texts, device):
    cat = catalog_with(tmp, "minilm", texts=texts)
    enc = loader.get_encoder(get_spec("all-minilm-l6-v2"), device=device)
    model = enc.model
    model.encode(texts[:64], batch_size=64)  # warm-up
    m = paired(lambda: cat.compute_embeddings("all-minilm-l6-v2", all=True, device=device),
               lambda: model.encode(texts, batch_size=64, normalize_embeddings=True))
    prompts = texts[:50]
    q = paired(lambda: [cat.encode_query("all-minilm-l6-v2", text=t) for t in prompts],
               lambda: [model.encode([t], normalize_embeddings=True) for t in prompts])
    return [row("all-minilm-l6-v2", "texts, compute", len(texts), m, "SentenceTransformer.encode"),
            row("all-minilm-l6-v2", "prompts, one at a time", len(prompts), q, "SentenceTransformer.encode([t])")]


def bench_clip(tmp, paths, texts, device):
    torch, open_clip = import_torch(), import_open_clip()
    torch.manual_seed(0)
    with quiet_loading():
        raw_model = open_clip.create_model("ViT-B-32", pretrained=None, force_quick_gelu=True)
    ckpt = tmp / "clip-random" / "ViT-B-32-random.pt"
    ckpt.parent.mkdir()
    torch.save(raw_model.state_dict(), ckpt)
    from open_clip.transform import PreprocessCfg, image_transform_v2

    preprocess = image_transform_v2(PreprocessCfg(**raw_model.visual.preprocess_cfg), is_train=False)
    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    enc = loader.get_encoder(get_spec("clip-vit-b-32"), device=device, weights=ckpt)
    dev = enc.device
    raw_model = raw_model.eval().to(dev)
    os.environ["CATALOG_MODELS"] = str(ckpt.parent)  # encode_query finds the same checkpoint
    (ckpt.parent / "clip-vit-b-32.pt").symlink_to(ckpt)
    cat = catalog_with(tmp, "clip", images=paths)

    def raw_images():
        with torch.inference_mode():
            for s in range(0, len(paths), 32):
                batch = torch.stack([preprocess(Image.open(p).convert("RGB")) for p in paths[s:s + 32]]).to(dev)
                f = raw_model.encode_image(batch)
                (f / f.norm(dim=-1, keepdim=True)).cpu().numpy()

    def raw_texts(prompts):
        with torch.inference_mode():
            for t in prompts:
                f = raw_model.encode_text(tokenizer([t]).to(dev))
                (f / f.norm(dim=-1, keepdim=True)).cpu().numpy()

    raw_images()  # warm-up
    m = paired(lambda: cat.compute_embeddings("clip-vit-b-32", all=True, device=device, weights=ckpt),
               raw_images, rounds=3)
    prompts = texts[:30]
    cat.encode_query("clip-vit-b-32", text=prompts[0])
    q = paired(lambda: [cat.encode_query("clip-vit-b-32", text=t) for t in prompts], lambda: raw_texts(prompts))
    return [row("clip-vit-b-32", "images, compute", len(paths), m, "open_clip preprocess + encode_image"),
            row("clip-vit-b-32", "prompts, one at a time", len(prompts), q, "open_clip encode_text([t])")]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1000, help="images for color-texture")
    ap.add_argument("--clip-images", type=int, default=64, help="images for clip-vit-b-32 (slow on CPU)")
    ap.add_argument("--texts", type=int, default=300)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--skip-clip", action="store_true")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON too")
    args = ap.parse_args(argv)
    torch = import_torch()
    import_sentence_transformers()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    print(f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, GPU: {gpu}, "
          f"torch threads: {torch.get_num_threads()}, device: {args.device}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-models-") as tmp:
        tmp = Path(tmp)
        paths = make_images(tmp / "imgs", max(args.images, args.clip_images))
        texts = load_texts(args.texts)
        rows += bench_color_texture(tmp, paths[:args.images])
        rows += bench_minilm(tmp, texts, args.device)
        if not args.skip_clip:
            rows += bench_clip(tmp, paths[:args.clip_images], texts, args.device)
    print("| model | items | n | ours (items/s, best) | raw library (items/s, best) | ours/raw (median of rounds) | baseline |")
    print("|---|---|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['model']} | {r['what']} | {r['n']} | {r['ours_per_s']:.1f} | {r['raw_per_s']:.1f} | "
              f"{r['ratio']:.2f} | {r['baseline']} |")
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
