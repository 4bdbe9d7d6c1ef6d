"""`tspvideo features`: the feature files the TSP authors released, listed with cache status, downloaded by name."""

from __future__ import annotations

import argparse

from tspvideo.commands import add_command
from tspvideo.core.download import partial_path
from tspvideo.features.released import RELEASED, cached_path, download_released, features_cache_dir


def register(subparsers) -> None:
    """Add the ``features`` subcommand (``list`` and ``download``)."""
    parser = add_command(
        subparsers, "features", "list and download the released TSP features (ActivityNet, THUMOS14) and GVF files",
        description="Released files are HDF5 with one [T, 512] dataset per video-name; once downloaded, a name "
                    "can stand wherever a feature folder goes (export, probe, similarity, gvf).")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = add_command(actions, "list", "the registered files, their time grid and whether they are cached")
    show.add_argument("--urls", action="store_true", help="also print each file's URL")
    show.set_defaults(func=run_list)
    get = add_command(actions, "download", "download one released file into the cache (resumable, verified)")
    get.add_argument("name", choices=sorted(RELEASED), metavar="NAME", help="a name from `tspvideo features list`")
    get.add_argument("--no-progress", action="store_true", help="no progress bar")
    get.set_defaults(func=run_download)


def _status(name: str) -> str:
    path = cached_path(RELEASED[name])
    if path.is_file():
        return "yes"
    return "partial" if partial_path(path).is_file() else "no"


def run_list(args: argparse.Namespace) -> int:
    """Print the registry with each file's grid, size (where known) and cache status."""
    print(f"cache: {features_cache_dir()} (set TSPVIDEO_CACHE to change it)\n")
    header = f"{'name':34} {'kind':8} {'L':>3} {'fps':>4} {'stride':>6} {'size':>9} cached"
    print(header)
    print("-" * len(header))
    for name, info in RELEASED.items():
        grid = info.grid
        clip_len, fps, stride = (str(info.clip_len), f"{info.fps:g}", str(info.stride)) if grid else ("-",) * 3
        size = f"{info.expected.size / 2**20:.1f}M" if info.expected.size else "unknown"
        print(f"{name:34} {info.kind:8} {clip_len:>3} {fps:>4} {stride:>6} {size:>9} {_status(name)}")
        if args.urls:
            print(f"    {info.url}")
    return 0


def run_download(args: argparse.Namespace) -> int:
    """Download (or find in the cache) one released file and print its path."""
    info = RELEASED[args.name]
    already = cached_path(info).is_file()
    path = download_released(args.name, progress=not args.no_progress)
    checks = [c for c, known in (("size", info.expected.size), ("SHA-256", info.expected.sha256),
                                 ("git blob id", info.expected.git_blob_sha1)) if known]
    verified = (f"verified by {' and '.join(checks)}" if checks
                else "not verified: the authors published no size or hash")
    print(f"{args.name}: {'already in the cache' if already else 'downloaded'} at {path} ({verified})")
    return 0
