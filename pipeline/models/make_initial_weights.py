"""Generate the honest-start weight files and print their sha256 lines for registry.py.

The final convs are zero-initialised, so these weights make the pair output exactly bicubic
upscaling; trained weights replace them later. Same seed and torch build -> same bytes.

    python -m pipeline.models.make_initial_weights                      # untrained tiny files, into the package
    python -m pipeline.models.make_initial_weights --sizes base large --out /data/weights
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from pipeline.models.registry import MODELS, SCALES, Kind, get_spec, weight_filename
from pipeline.models.weights import BUNDLED_DIR, serialize, sha256_bytes

SEED = 20240601


def make_weights(kind: Kind, name: str, scale: int, out_dir: Path, seed: int = SEED) -> tuple[Path, str]:
    """Write one weight file; returns its path and sha256."""
    torch.manual_seed(seed)
    spec = get_spec(kind, name)
    data = serialize(spec, scale, spec.build(scale))
    path = out_dir / weight_filename(kind, name, scale)
    path.write_bytes(data)
    return path, sha256_bytes(data)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["tiny"], help="registry sizes to generate (default: tiny)")
    parser.add_argument("--out", type=Path, default=BUNDLED_DIR, help="output folder (default: the package's)")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    into_package = args.out.resolve() == BUNDLED_DIR.resolve()
    if into_package and set(args.sizes) - {"tiny"}:
        parser.error("only tiny is bundled in the package; give --out for other sizes")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.sizes:
        for kind in MODELS:
            weights = get_spec(kind, name).weights or {}
            # Trained files in the package are never overwritten by an honest start.
            scales = [s for s in SCALES if not (into_package and s in weights and weights[s].trained)]
            shas = {s: make_weights(kind, name, s, args.out, args.seed)[1] for s in scales}
            print(f'    ("{kind}", "{name}"): {{')
            print("".join(f'        {s}: "{sha}",\n' for s, sha in shas.items()) + "    },")


if __name__ == "__main__":
    main()
