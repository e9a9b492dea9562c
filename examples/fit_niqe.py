"""Refit NIQE's pristine model from clean photos and write ``semprior/metrics/niqe_fitted_params.npz``.

Usage (the shipped model was written by exactly this command)::

    python examples/fit_niqe.py ../shared/data/clean -o semprior/metrics/niqe_fitted_params.npz

Every image directly inside the given folders or their sub-folders (one level: CBSD68, Kodak24,
McMaster in the project's shared data) is read with :func:`semprior.data.io.read_image`; the
patches whose mean local sigma exceeds 0.75 x the image's maximum are kept (the NIQE authors'
selection), and the mean and covariance of their 36 features are written as an ``.npz`` file
(:func:`semprior.metrics.niqe.save_niqe_model`).

Budget: the 110 clean photos, about 100 CPU seconds (two threads). The model it fits ranks
degradations of the first Kodak24 photo as NIQE should (lower is better;
``benchmarks/results/examples.md``): clean 2.98, noise 6.44, blur 9.11 (Gaussian noise sigma 0.05,
5x5 box blur).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from semprior.data.io import list_images, read_image
from semprior.metrics.niqe import fit_niqe_model, save_niqe_model


def clean_photos(roots: list[str]) -> list[Path]:
    files: list[Path] = []
    for r in roots:
        root = Path(r)
        for folder in [root, *sorted(p for p in root.iterdir() if p.is_dir())]:
            files += list_images(folder) if any(f.is_file() for f in folder.iterdir()) else []
    if not files:
        raise SystemExit(f"no images under {roots}")
    return files


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("roots", nargs="+", help="folders of clean photos (and their sub-folders)")
    p.add_argument("-o", "--out", required=True, help="the .npz file to write")
    args = p.parse_args(argv)
    files = clean_photos(args.roots)
    names = sorted({f.parent.name for f in files})
    model = fit_niqe_model((read_image(f) for f in files), source=f"{len(files)} photos: {', '.join(names)}")
    save_niqe_model(model, args.out)
    print(f"fitted on {len(files)} photos ({model.source}), {model.patches} patches -> {args.out}")


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()
