"""Hugging Face Hub: publish and fetch the very files of [`save_pretrained`][semprior.models.io.save_pretrained].

Optional (``pip install 'semprior[hub]'``); nothing here runs at import. ``hf://org/name`` is
accepted wherever a model file or folder is (``--checkpoint``, ``from_pretrained``,
``create_model(pretrained=...)``, ``load_model``): it is fetched into the Hugging Face cache by
[`hub_download`][semprior.models.io.hub_download] and then read like a local folder.
"""

from __future__ import annotations

import os
from typing import Any

from torch import nn

from semprior.models.io import CONFIG_NAME, HUB_PREFIX, WEIGHTS_NAME, from_pretrained, hub_download, save_pretrained

__all__ = ["HUB_PREFIX", "from_hub", "push_to_hub"]

# --- Hugging Face Hub: optional (pip install 'semprior[hub]'); nothing here runs at import --------------------------
#
# huggingface_hub's PyTorchModelHubMixin is not used: a model class must inherit it (so `import semprior` would need
# huggingface_hub), it writes the constructor's arguments as config.json (our config.json records the registry name,
# the config and the prior by name) and it drops a prior module from the record. These two functions move the very
# files of save_pretrained instead.


def push_to_hub(
    model: nn.Module,
    repo_id: str,
    *,
    name: str | None = None,
    revision: str | None = None,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str = "Upload semprior model",
) -> str:
    """Upload ``model`` as [`save_pretrained`][semprior.models.io.save_pretrained] writes it (``config.json`` +
    ``model.safetensors``, nothing else) to the Hub model repository ``repo_id``, creating it if needed.

    This is the network: call it only to publish. Returns the commit URL.

    Raises:
        ImportError: huggingface_hub is not installed (``pip install 'semprior[hub]'``).
    """
    import tempfile

    hf = _require_hub("push_to_hub")
    repo_id = repo_id.removeprefix(HUB_PREFIX)
    with tempfile.TemporaryDirectory() as tmp:
        save_pretrained(model, tmp, name=name)
        api = hf.HfApi(token=token)
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        info = api.upload_folder(
            repo_id=repo_id,
            folder_path=tmp,
            revision=revision,
            commit_message=commit_message,
            allow_patterns=[CONFIG_NAME, WEIGHTS_NAME],
            repo_type="model",
        )
    return str(getattr(info, "commit_url", info))


def from_hub(
    repo_id: str,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    token: str | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Load a model that [`push_to_hub`][semprior.hub.push_to_hub] published: ``"org/name"`` or ``"hf://org/name"``.

    Only ``config.json`` and ``model.safetensors`` are fetched, into the Hugging Face cache; a
    file already there is not fetched again. ``local_files_only=True`` (or ``HF_HUB_OFFLINE=1``)
    reads the cache only and never opens a connection. ``kwargs`` go to
    [`from_pretrained`][semprior.models.io.from_pretrained] (``prior=``, ``weights_dir=``, ``device=``, ...).

    Raises:
        ImportError: huggingface_hub is not installed (``pip install 'semprior[hub]'``).
        FileNotFoundError: offline and the files are not in the cache.
    """
    folder = hub_download(
        repo_id, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only, token=token
    )
    return from_pretrained(folder, **kwargs)


def _require_hub(purpose: str):
    """``huggingface_hub``, or an ``ImportError`` naming the ``hub`` extra."""
    from semprior._optional import require

    return require("huggingface_hub", extra="hub", purpose=purpose)
