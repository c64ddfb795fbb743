"""color-texture: the training-free image descriptor, and computing embeddings with it end to end."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from catalog import CatalogError
from catalog.models import color_texture
from catalog.models.images import open_image
from catalog.scoring import pairwise_scores
from catalog.store import COLOR_TEXTURE_ID

FAMILIES = {
    "red": [(220, 30, 30), (170, 20, 40), (250, 90, 70), (140, 10, 10)],
    "green": [(30, 200, 40), (20, 140, 60), (110, 220, 90), (10, 100, 20)],
    "blue": [(30, 40, 220), (20, 80, 180), (90, 130, 250), (10, 20, 120)],
    "yellow": [(240, 220, 30), (200, 180, 20), (250, 240, 110), (220, 200, 0)],
}
PATTERNS = ("solid", "stripes", "circle", "checker", "noise")


def pattern(kind, fg, size=64, seed=0):
    bg = (255, 255, 255) if kind in ("stripes", "circle") else tuple(int(v * 0.5) for v in fg)
    img = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(img)
    if kind == "solid":
        img = Image.new("RGB", (size, size), fg)
    elif kind == "stripes":
        for x in range(0, size, 8):
            d.rectangle([x, 0, x + 3, size], fill=fg)
    elif kind == "circle":
        d.ellipse([size // 6, size // 6, size - size // 6, size - size // 6], fill=fg)
    elif kind == "checker":
        for i in range(0, size, 16):
            for j in range(0, size, 16):
                if (i // 16 + j // 16) % 2:
                    d.rectangle([i, j, i + 15, j + 15], fill=fg)
    elif kind == "noise":
        a = np.random.default_rng(seed).random((size, size, 1))
        img = Image.fromarray((a * np.array(fg) + (1 - a) * np.array(bg)).astype(np.uint8))
    return img


def asym(size=48):
    """An asymmetric picture: rotating or mirroring it changes its descriptor."""
    img = Image.new("RGB", (size, size), (250, 250, 250))
    d = ImageDraw.Draw(img)
    d.rectangle([0, 0, size // 2, size // 4], fill=(200, 30, 30))
    d.ellipse([size // 2, size // 2, size - 4, size - 4], fill=(30, 30, 200))
    d.line([0, size - 1, size // 2, size // 3], fill=(0, 0, 0), width=3)
    return img


@pytest.fixture
def family_folder(tmp_path):
    root = tmp_path / "families"
    for fam, colours in FAMILIES.items():
        for c_i, colour in enumerate(colours):
            for kind in PATTERNS:
                p = root / fam / f"{kind}{c_i}.png"
                p.parent.mkdir(parents=True, exist_ok=True)
                pattern(kind, colour, seed=c_i).save(p)
    return root


def vectors(cat, name):
    """``{global_key: vector}`` of an embedding, read back from the catalog."""
    emb = cat.get_embedding(name)
    ids, mat = cat.cache.load(emb)
    keys = {r["id"]: r["global_key"] for r in cat.get_datarows(list(ids))}
    return {keys[i]: np.asarray(v) for i, v in zip(ids, mat)}


def test_descriptor_layout_and_determinism():
    img = pattern("noise", (200, 40, 40), seed=3)
    a, b = color_texture.describe(img), color_texture.describe(img.copy())
    assert a.shape == (256,) and a.dtype == np.float32
    assert np.array_equal(a, b)
    assert abs(float(np.linalg.norm(a)) - 1.0) < 1e-5
    assert color_texture.LAYOUT["shape"][1] == 256
    # a pure red image puts its colour mass in the red hue bins, none in the grey bins
    red = color_texture.describe(Image.new("RGB", (32, 32), (230, 20, 20)))
    lo, hi = color_texture.LAYOUT["grey"]
    assert not red[lo:hi].any()
    assert red[:4].sum() + red[44:48].sum() > 0.5 * red[:48].sum()


def test_colour_families_separate(cat, family_folder):
    cat.import_datarows(family_folder)
    report = cat.compute_embeddings("color-texture")
    n = len(FAMILIES) * 4 * len(PATTERNS)
    assert report.computed == n and not report.unreadable
    vecs = vectors(cat, "color-texture")
    keys = sorted(vecs)
    fam = np.array([k.split("/")[0] for k in keys])
    scores = pairwise_scores(np.stack([vecs[k] for k in keys]), np.stack([vecs[k] for k in keys]))
    np.fill_diagonal(scores, np.nan)
    nearest_same = 0
    for i in range(len(keys)):
        nearest_same += fam[int(np.nanargmax(scores[i]))] == fam[i]
        own = np.nanmean(scores[i, fam == fam[i]])
        others = [np.nanmean(scores[i, fam == f]) for f in FAMILIES if f != fam[i]]
        assert own > max(others), f"{keys[i]} is closer on average to another colour family"
    assert nearest_same >= 0.95 * len(keys)


def test_solid_colours_rank_by_family(cat, tmp_path):
    root = tmp_path / "solid"
    root.mkdir()
    for fam, colours in FAMILIES.items():
        for i, c in enumerate(colours[:3]):
            Image.new("RGB", (40, 40), c).save(root / f"{fam}{i}.png")
    cat.import_datarows(root)
    cat.compute_embeddings("color-texture")
    vecs = vectors(cat, "color-texture")
    for fam in FAMILIES:
        q = vecs[f"{fam}0.png"]
        others = sorted(vecs, key=lambda k: -float(pairwise_scores(q, vecs[k])[0, 0]))
        others.remove(f"{fam}0.png")
        assert {k[:-4] for k in others[:2]} == {f"{fam}1", f"{fam}2"}


def _digit_png(x: np.ndarray) -> Image.Image:
    """A scikit-learn digit (8×8, 0..16) as the demo renders it: dark ink on white, 32×32."""
    a = (255 - x / 16.0 * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a, "L").resize((32, 32), Image.Resampling.NEAREST).save(buf, "PNG")
    return Image.open(io.BytesIO(buf.getvalue()))


def test_handwritten_digits_leave_one_out_accuracy():
    from sklearn.datasets import load_digits

    digits = load_digits()
    vecs = np.stack([color_texture.describe(open_image(_digit_png(x))) for x in digits.images])
    scores = pairwise_scores(vecs, vecs)
    np.fill_diagonal(scores, -1.0)
    accuracy = float((digits.target[scores.argmax(axis=1)] == digits.target).mean())
    assert accuracy >= 0.95, accuracy


def _save_mode_variants(root):
    """The same picture in many storage modes; returns {name: expected 8-bit RGB picture}."""
    base = asym()
    grey = base.convert("L")
    expected = {}
    root.mkdir(parents=True, exist_ok=True)
    base.save(root / "rgb.png")
    expected["rgb.png"] = base
    grey.save(root / "grey.png")
    expected["grey.png"] = grey.convert("RGB")
    rgba = base.convert("RGBA")
    alpha = Image.new("L", base.size, 255)
    ImageDraw.Draw(alpha).rectangle([0, 0, 10, 10], fill=0)  # transparent corner shows white
    rgba.putalpha(alpha)
    rgba.save(root / "rgba.png")
    flat = base.copy()
    ImageDraw.Draw(flat).rectangle([0, 0, 10, 10], fill=(255, 255, 255))
    expected["rgba.png"] = flat
    base.quantize(64).save(root / "palette.png")
    expected["palette.png"] = base.quantize(64).convert("RGB")
    base.convert("CMYK").save(root / "cmyk.tif")
    expected["cmyk.tif"] = base.convert("CMYK").convert("RGB")
    wide = (np.asarray(grey).astype(np.uint16) * 257)
    Image.fromarray(wide).save(root / "grey16.png")  # 16-bit: full range kept, not clipped to white
    expected["grey16.png"] = grey.convert("RGB")
    Image.fromarray(np.asarray(grey).astype(np.int32) * 257, "I").save(root / "grey32.tif")
    expected["grey32.tif"] = grey.convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: viewers turn it 90° clockwise to show it upright
    base.transpose(Image.Transpose.ROTATE_90).save(root / "exif-rotated.png", exif=exif)
    expected["exif-rotated.png"] = base
    base.convert("1").save(root / "bilevel.png")
    expected["bilevel.png"] = base.convert("1").convert("RGB")
    return expected


def test_image_modes_are_embedded_as_they_look(cat, tmp_path):
    expected = _save_mode_variants(tmp_path / "modes")
    opened = {name: open_image(tmp_path / "modes" / name) for name in expected}
    assert Image.open(tmp_path / "modes" / "grey16.png").mode.startswith("I")
    for name, img in opened.items():
        assert img.mode == "RGB" and img.size == expected[name].size, name
        diff = np.abs(np.asarray(img, np.int16) - np.asarray(expected[name], np.int16))
        assert diff.max() <= 2, f"{name} differs from how it looks by {diff.max()}"
    report = cat.compute_embeddings("color-texture", progress=None)
    assert report.computed == 0  # nothing imported yet
    cat.import_datarows(tmp_path / "modes")
    report = cat.compute_embeddings("color-texture")
    assert report.computed == len(expected) and not report.unreadable
    vecs = vectors(cat, "color-texture")
    upright = color_texture.describe(asym())
    assert pairwise_scores(vecs["exif-rotated.png"], upright)[0, 0] > 0.999
    assert pairwise_scores(vecs["grey16.png"], vecs["grey.png"])[0, 0] > 0.999
    turned = color_texture.describe(asym().transpose(Image.Transpose.ROTATE_90))
    assert pairwise_scores(vecs["exif-rotated.png"], turned)[0, 0] < 0.95


def test_compute_resumes_counts_other_media_and_lists_unreadable(cat, image_folder, text_records, tmp_path):
    cat.import_datarows([image_folder, text_records])
    seen = []
    report = cat.compute_embeddings("color-texture", progress=lambda done, total: seen.append((done, total)))
    assert (report.computed, report.skipped_other_media, report.unreadable) == (6, 8, [])
    assert seen[0] == (0, 6) and seen[-1] == (6, 6)
    assert cat.get_embedding(COLOR_TEXTURE_ID).get_imported_vector_count() == 6
    before = vectors(cat, "color-texture")

    # new rows, one of which is broken after import, and one URL that cannot be fetched
    more = tmp_path / "more"
    more.mkdir()
    Image.new("RGB", (20, 20), (0, 200, 0)).save(more / "g.png")
    Image.new("RGB", (20, 20), (0, 150, 0)).save(more / "broken.png")
    cat.import_datarows(more)
    (more / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    urls = tmp_path / "urls.ndjson"
    urls.write_text('{"global_key": "remote", "image": "http://127.0.0.1:9/nothing.png"}\n')
    cat.import_datarows(urls)
    report = cat.compute_embeddings("color-texture")
    assert report.computed == 1 and report.already_had_vectors == 6
    reasons = dict(report.unreadable)
    assert set(reasons) == {"broken.png", "remote"}
    assert "cannot decode image" in reasons["broken.png"] or "truncated" in reasons["broken.png"]
    assert reasons["remote"].startswith("cannot fetch URL")
    after = vectors(cat, "color-texture")
    assert len(after) == 7
    assert all(np.array_equal(before[k], after[k]) for k in before)

    # all=True recomputes every readable row, with the same (deterministic) result
    report = cat.compute_embeddings("color-texture", all=True)
    assert report.computed == 7 and report.already_had_vectors == 0
    again = vectors(cat, "color-texture")
    assert all(np.array_equal(after[k], again[k]) for k in after)


def test_interrupted_compute_loses_its_unwritten_buffer_and_resumes(cat, tmp_path):
    root = tmp_path / "many"
    root.mkdir()
    for i in range(300):
        Image.new("RGB", (8, 8), (i % 256, (7 * i) % 256, 90)).save(root / f"{i:03d}.png")
    cat.import_datarows(root)

    def stop_late(done, total):
        if done > 256:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cat.compute_embeddings("color-texture", batch_size=1, progress=stop_late)
    emb = cat.get_embedding("color-texture")
    # 300 rows fill less than one buffer (a row group): nothing was written, nothing half-written
    assert emb.get_imported_vector_count() == 0
    report = cat.compute_embeddings("color-texture")
    assert report.computed == 300 and report.already_had_vectors == 0
    assert emb.get_imported_vector_count() == 300


def test_encode_query_image_matches_row_vector(cat, image_folder):
    cat.import_datarows(image_folder)
    cat.compute_embeddings("color-texture")
    path = image_folder / "red" / "r1.png"
    q_path = cat.encode_query("color-texture", image=path)
    q_bytes = cat.encode_query(COLOR_TEXTURE_ID, image=path.read_bytes())
    assert q_path.shape == (256,) and np.array_equal(q_path, q_bytes)
    assert np.allclose(vectors(cat, "color-texture")["red/r1.png"], q_path, atol=1e-6)
    if hasattr(cat, "search"):
        res = cat.search("color-texture", image=str(path), min_score=0.0, limit=3)
        assert [h.global_key.split("/")[0] for h in res.results] == ["red"] * 3


def test_encode_query_errors(cat, tmp_path):
    with pytest.raises(CatalogError, match="images only"):
        cat.encode_query("color-texture", text="red things")
    with pytest.raises(CatalogError, match=r"query image .*missing\.png: file not found"):
        cat.encode_query("color-texture", image=tmp_path / "missing.png")
    with pytest.raises(CatalogError, match="not a supported image"):
        cat.encode_query("color-texture", image=b"definitely not an image")
    with pytest.raises(CatalogError, match="either a text prompt or an image"):
        cat.encode_query("color-texture")
    cat.create_embedding("mine", 16)
    with pytest.raises(CatalogError, match="mine is a custom embedding: there is no model"):
        cat.encode_query("mine", text="anything")


def test_compute_argument_errors_write_nothing(cat, image_folder):
    cat.import_datarows(image_folder)
    cases = [
        (dict(model="no-such-model"), "no model named 'no-such-model'"),
        (dict(model="color-texture", batch_size=0), "`batch_size` must be from 1"),
        (dict(model="color-texture", batch_size="many"), "`batch_size` must be a whole number"),
        (dict(model="color-texture", device="tpu"), "unknown device 'tpu'"),
        (dict(model="color-texture", weights="/x"), "takes no weights"),
        (dict(model="color-texture", pretrained="openai"), "`pretrained` applies to clip-vit-b-32 only"),
    ]
    for kwargs, message in cases:
        with pytest.raises(CatalogError, match=message):
            cat.compute_embeddings(**kwargs)
    assert cat.get_embedding("color-texture").get_imported_vector_count() == 0


def test_cli_compute_and_models(cli, image_folder, text_records, db_path):
    assert cli("datarows", "import", image_folder, text_records).returncode == 0
    r = cli("embeddings", "compute", "color-texture")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Computed 6 color-texture vectors on cpu")
    assert "8 rows of another media type skipped" in r.stdout
    assert cli("embeddings", "count", "color-texture").stdout.strip() == "6"
    r = cli("embeddings", "compute", COLOR_TEXTURE_ID, "--json")
    assert r.returncode == 0
    data = json.loads(r.stdout)
    assert data["computed"] == 0 and data["already_had_vectors"] == 6 and data["skipped_other_media"] == 8

    r = cli("embeddings", "compute", "color-texture", "--batch-size", "0")
    assert r.returncode == 2 and r.stderr.strip() == "error: --batch-size must be from 1 to 4096, not 0"
    assert "Traceback" not in r.stderr

    r = cli("models")
    assert r.returncode == 0
    lines = {ln.split(" - ")[1].strip(): ln for ln in r.stdout.splitlines()}
    assert set(lines) == {"clip-vit-b-32", "all-mpnet-base-v2", "all-minilm-l6-v2", "color-texture"}
    assert lines["color-texture"].startswith(COLOR_TEXTURE_ID)
    assert "dims: 256" in lines["color-texture"] and "available: yes" in lines["color-texture"]
    r = cli("models", "--json")
    models = {m["name"]: m for m in json.loads(r.stdout)}
    assert models["color-texture"]["available"] is True and models["color-texture"]["dims"] == 256
    assert models["all-minilm-l6-v2"]["available"] is True and models["all-minilm-l6-v2"]["media_type"] == "text"
    assert models["clip-vit-b-32"]["id"] == "00000000-0000-0000-0000-000000000000"
