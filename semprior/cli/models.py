"""``semprior models``: the registered models, the weights that ship with semprior (by tag), and the shipped recipes.

Examples:
    ```bash
    semprior models                # table: model, kind, shipped tags (default first), description;
                                   # then tags and recipes
    semprior models --names        # just the names, one a line (for scripts)
    ```

A shipped tag loads with no download (``semprior enhance --model NAME`` uses the default tag;
``create_model(NAME, pretrained=TAG)`` a named one). An official tag names a file that you put in
your weights directory (``$SEMPRIOR_WEIGHTS``). The recipes are what ``semprior train --config NAME``
accepts by name.
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--names", action="store_true", help="print only the model names, one a line")


def run(args: argparse.Namespace) -> int:
    from semprior.engine.run_config import shipped_recipes
    from semprior.models.factory import pretrained_path
    from semprior.models.registry import MODELS, list_models

    names = list_models()
    if args.names:
        print("\n".join(names))
        return 0
    print(f"{'model':14} {'kind':9} {'shipped weights':22} description")
    for name in names:
        entry = MODELS[name]
        kind = "classical" if entry.training_loss is None else "learned"
        tags = entry.shipped_tags
        shipped = ", ".join(f"{t} (default)" if i == 0 else t for i, t in enumerate(tags)) or "-"
        desc = entry.description.removeprefix("classical: ")
        print(f"{name:14} {kind:9} {shipped:22} {desc}")
    print("\nshipped weights (no download; MODEL_CARD.md in each folder: data, training, scores):")
    for name in names:
        for tag in MODELS[name].shipped_tags:
            print(f"  {name}:{tag}  {pretrained_path(name, tag)}")
    official = {n: sorted(t for t, p in MODELS[n].pretrained.items() if not p.shipped) for n in names}
    official = {n: tags for n, tags in official.items() if tags}
    if official:
        print("official weights by tag (put the file in $SEMPRIOR_WEIGHTS; `semprior weights` lists the files):")
        for name, tags in official.items():
            print(f"  {name}: {', '.join(tags)}")
    print("\nshipped training recipes (semprior train --config NAME): " + ", ".join(shipped_recipes()))
    return 0
