"""Build the demo data in sample_data/ (deterministic; safe to rerun).

* ``digits/`` — scikit-learn's 1,797 handwritten digits as 32×32 grayscale PNGs (upscaled from 8×8),
  ``digits_metadata.csv`` (digit and a train/test split per global_key) and ``digit_labels.csv``
  (about 10 % of the digits labeled, at least a few per class);
* ``digits_pixels.ndjson.gz`` — an example custom embedding: the raw 64 pixel values per digit;
* ``texts.ndjson`` — 300 short texts on five topics (topic in metadata), composed from phrases
  written for this project.

Usage: python tools/make_sample_data.py [--out sample_data] [--force]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import random
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent

TOPICS = {
    "cooking": (
        ["The chef", "My grandmother", "A home cook", "The baker", "Our neighbour", "The food critic",
         "A culinary student", "The pastry team"],
        ["simmered a tomato sauce", "kneaded sourdough bread", "roasted root vegetables", "whisked eggs into a custard",
         "seared a steak in cast iron", "folded butter into pastry dough", "braised lamb shanks", "baked a lemon tart",
         "toasted spices for a curry", "reduced a red wine glaze"],
        ["with fresh basil and garlic", "until the crust turned golden", "for a Sunday family dinner",
         "using a recipe from an old cookbook", "and served it with crusty bread", "over a low flame for hours",
         "with a pinch of sea salt", "for the neighbourhood potluck"],
    ),
    "sports": (
        ["The striker", "Our goalkeeper", "The marathon runner", "A young tennis player", "The basketball team",
         "The cycling champion", "The rugby captain", "A veteran swimmer"],
        ["scored twice in the final", "broke the course record", "won the match in five sets",
         "defended the title", "trained at altitude all winter", "recovered from a knee injury",
         "led the league in assists", "sprinted past the defenders", "qualified for the world championship",
         "set a personal best"],
        ["in front of a sold-out stadium", "after a dramatic comeback", "despite the heavy rain",
         "in the last minute of extra time", "to the delight of the fans", "under a new coach",
         "in the opening round of the season", "with a stunning performance"],
    ),
    "astronomy": (
        ["The space telescope", "An amateur astronomer", "The observatory", "A team of astrophysicists",
         "The Mars rover", "The lunar probe", "A radio telescope array", "The planetarium guide"],
        ["photographed a distant spiral galaxy", "detected an exoplanet transit", "measured the light of a supernova",
         "mapped craters near the lunar south pole", "observed a comet's glowing tail",
         "recorded signals from a pulsar", "studied the rings of Saturn", "tracked a near-Earth asteroid",
         "found traces of ancient water", "charted a cluster of young stars"],
        ["on a clear moonless night", "billions of light years away", "with unprecedented resolution",
         "in the infrared spectrum", "beyond the orbit of Neptune", "during the total solar eclipse",
         "in the constellation Orion", "after months of careful observation"],
    ),
    "gardening": (
        ["The gardener", "My aunt", "A community garden volunteer", "The allotment holder", "The florist",
         "Our landlord", "A beekeeper", "The orchard owner"],
        ["planted tomato seedlings", "pruned the apple trees", "mulched the rose beds", "sowed carrots and radishes",
         "composted the autumn leaves", "divided the overgrown hostas", "built a raised vegetable bed",
         "harvested a basket of courgettes", "watered the herb garden", "repotted the orchids"],
        ["before the first frost", "in rich well-drained soil", "after the spring rain",
         "to attract bees and butterflies", "along the sunny south wall", "in the greenhouse",
         "using organic fertiliser", "early on a cool morning"],
    ),
    "programming": (
        ["The developer", "Our backend team", "A junior engineer", "The open-source maintainer",
         "The database administrator", "A data scientist", "The security auditor", "The release manager"],
        ["refactored the parser module", "fixed a race condition in the cache", "wrote unit tests for the API",
         "profiled a slow SQL query", "migrated the service to a new framework", "reviewed a pull request",
         "tracked down a memory leak", "added type hints to the codebase", "optimised the build pipeline",
         "documented the command-line interface"],
        ["before the release deadline", "after a failing CI run", "using a debugger and logs",
         "to cut the latency in half", "with help from the code review", "in the legacy repository",
         "on a late Friday afternoon", "so the tests pass again"],
    ),
}


def make_texts(out: Path, per_topic: int = 60) -> int:
    rng = random.Random(7)
    n = 0
    with open(out / "texts.ndjson", "w") as fh:
        for topic, (subjects, actions, details) in TOPICS.items():
            combos = [(s, a, d) for s in subjects for a in actions for d in details]
            for i, (s, a, d) in enumerate(rng.sample(combos, per_topic)):
                fh.write(json.dumps({"global_key": f"texts/{topic}-{i:03d}", "text": f"{s} {a} {d}.",
                                     "metadata": {"topic": topic}}) + "\n")
                n += 1
    return n


def make_digits(out: Path, size: int = 32, labeled_fraction: float = 0.10) -> int:
    from sklearn.datasets import load_digits

    digits = load_digits()
    folder = out / "digits"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    labeled = set(rng.choice(len(digits.target), size=int(round(labeled_fraction * len(digits.target))), replace=False))
    with open(out / "digits_metadata.csv", "w", newline="") as meta_fh, \
            open(out / "digit_labels.csv", "w", newline="") as label_fh, \
            gzip.open(out / "digits_pixels.ndjson.gz", "wt") as vec_fh:
        meta, labels = csv.writer(meta_fh), csv.writer(label_fh)
        meta.writerow(["global_key", "digit", "split"])
        labels.writerow(["id", "label"])
        for i, (img, target) in enumerate(zip(digits.images, digits.target)):
            key = f"{i:04d}.png"
            pixels = (255 - img * (255 / 16)).clip(0, 255).astype(np.uint8)  # dark ink on white paper
            Image.fromarray(pixels, mode="L").resize((size, size), Image.Resampling.BILINEAR).save(folder / key)
            meta.writerow([key, int(target), "train" if i % 5 else "test"])
            if i in labeled:
                labels.writerow([key, str(int(target))])
            vec_fh.write(json.dumps({"id": key, "vector": (img.reshape(-1) / 16.0 + 0.01).round(4).tolist()}) + "\n")
    return len(digits.target)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "sample_data")
    ap.add_argument("--force", action="store_true", help="rebuild even if the files exist")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.force or not (args.out / "texts.ndjson").exists():
        print(f"texts: {make_texts(args.out)}")
    if args.force or not (args.out / "digits_pixels.ndjson.gz").exists() or not (args.out / "digits").is_dir():
        print(f"digits: {make_digits(args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
