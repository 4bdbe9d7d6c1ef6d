"""`tspvideo models`: the backbones (feature size, input recipe, FLOPs) and the known weights."""

from __future__ import annotations

import argparse

from tspvideo.commands import add_command


def register(subparsers) -> None:
    """Add the ``models`` subcommand."""
    parser = add_command(subparsers, "models", "list backbones and known weights")
    parser.add_argument("--urls", action="store_true", help="also print each file's URL")
    parser.set_defaults(func=run)


def recipe_text(recipe) -> str:
    """``16 @ 15 fps, 128x171 -> 112x112`` (a one-value resize is the short side)."""
    resize = "x".join(map(str, recipe.resize)) if len(recipe.resize) == 2 else f"short {recipe.resize[0]}"
    return f"{recipe.clip_len} @ {recipe.fps:g} fps, {resize} -> {recipe.crop[0]}x{recipe.crop[1]}"


def run(args: argparse.Namespace) -> int:
    """Print the registry and whether each file is already in the cache."""
    from tspvideo.models.backbones import available_backbones, backbone_spec
    from tspvideo.models.flops import RECIPE_GFLOPS
    from tspvideo.models.hf_weights import HUB_SCHEME, hub_cached, hub_page
    from tspvideo.models.weights import WEIGHTS, cache_dir, default_recipe

    header = f"{'backbone':13} {'dim':>5} {'GFLOPs/clip':>11}  input recipe (frames @ fps, resize -> crop)"
    print(header)
    print("-" * len(header))
    for name in available_backbones():
        recipe = default_recipe(name)
        print(f"{name:13} {backbone_spec(name).feature_dim:>5} {RECIPE_GFLOPS[name]:>11.1f}  {recipe_text(recipe)}")
    print("GFLOPs: one clip of the recipe's size, a multiply-add counted as 2 FLOPs (torch.utils.flop_counter)\n")
    print(f"weights cache: {cache_dir()} (set TSPVIDEO_CACHE to change it)\n")
    header = f"{'name':42} {'heads':14} {'classes':>7} {'gvf':5} cached"
    print(header)
    print("-" * len(header))
    for info in WEIGHTS.values():
        hub = info.url.startswith(HUB_SCHEME)  # a ViT checkpoint folder on the hub
        cached = hub_cached(info.url, cache_dir()) if hub else (cache_dir() / info.filename).is_file()
        print(f"{info.name:42} {'+'.join(info.heads):14} {info.num_classes:>7} {info.gvf or '-':5} "
              f"{'yes' if cached else 'no'}")
        if args.urls:
            print(f"    {hub_page(info.url) if hub else info.url}")
    return 0
