"""Reaching the Hub (the base layer): one quick reachability probe, the advice when it fails,
downloads that fail within seconds instead of retrying, and the project's one error for "the Hub
cannot be reached" (models, datasets and uploads all raise it)."""

from __future__ import annotations

import time

import huggingface_hub
from huggingface_hub import constants
from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled
from huggingface_hub.utils import validate_repo_id

from .errors import WKDError


class HubUnreachableError(WKDError, ConnectionError):
    """The Hub cannot be reached (offline mode or no network); the message says what to do."""


def hub_reachable(timeout: float = 3.0) -> bool:
    """One HEAD request to the configured endpoint (proxies respected), no retries."""
    from huggingface_hub.utils import get_session

    try:
        get_session().head(constants.ENDPOINT, timeout=timeout)
    except Exception:  # noqa: BLE001 - any failure means "not reachable now"
        return False
    return True


PROBE_TTL_S = 60.0  # how long one reachability probe of an endpoint is trusted
_probes: dict[str, tuple[float, bool]] = {}  # endpoint -> (monotonic time, reachable)


OFFLINE_REASON = "offline mode is on (HF_HUB_OFFLINE=1)"


def hub_unreachable_reason() -> str | None:
    """Why the Hub cannot be used now, or None: offline mode, or the endpoint did not answer one
    :func:`hub_reachable` probe (kept a minute). Models, datasets and uploads all ask this."""
    if constants.is_offline_mode():
        return OFFLINE_REASON
    endpoint = constants.ENDPOINT
    checked_at, reachable = _probes.get(endpoint, (float("-inf"), False))
    if time.monotonic() - checked_at > PROBE_TTL_S:
        reachable = hub_reachable()
        _probes[endpoint] = (time.monotonic(), reachable)
    return None if reachable else f"the Hub at {endpoint} does not answer (no network?)"


def hub_advice(local: str = "use a local folder", cache: bool = True) -> str:
    """What to do, by situation. Offline mode is on: unset it, or ``local``. The Hub does not
    answer: check the network, ``local``, or (``cache``: when a cached copy would do) set
    HF_HUB_OFFLINE=1 to skip the probe and use the cache."""
    if constants.is_offline_mode():
        return f"Unset HF_HUB_OFFLINE to reach the Hub, or {local}."
    skip = ", or set HF_HUB_OFFLINE=1 to skip this check and use what is cached" if cache else ""
    return f"Check the network (or HF_ENDPOINT), {local}{skip}."


def hub_download(
    repo_id: str,
    filename: str,
    subfolder: str | None = None,
    local_files_only: bool | None = None,
    **hub_kwargs,
) -> str:
    """``huggingface_hub.hf_hub_download`` that fails within seconds, with one clear
    ``HubUnreachableError``, when the Hub cannot be reached and the file is not cached (instead of
    huggingface_hub's retries). A file missing from a reachable repo raises ``EntryNotFoundError``;
    an invalid id ``HFValidationError``. ``hub_kwargs``: ``revision``, ``cache_dir``, ``token``."""
    validate_repo_id(repo_id)
    why = "local_files_only=True" if local_files_only else hub_unreachable_reason()
    kwargs = {"subfolder": subfolder} if subfolder else {}
    try:
        return huggingface_hub.hf_hub_download(
            repo_id, filename, local_files_only=why is not None, **kwargs, **hub_kwargs
        )
    except (OfflineModeIsEnabled, LocalEntryNotFoundError, ConnectionError, TimeoutError) as err:
        raise HubUnreachableError(
            f"could not reach the Hub for {repo_id!r} ({why or 'no network'}) and {filename!r} is "
            f"not in the local cache. {hub_advice('pass a local folder', cache=False)}"
        ) from err


def hub_model_snapshot(repo_id: str, local_files_only: bool | None) -> str:
    """A Hub repo's json and safetensors files, fetched (or read from the cache) as one local
    folder; ``HubUnreachableError`` within seconds when the Hub cannot be reached and the repo is
    not cached, ValueError for an id that is not one."""
    why = "local_files_only=True" if local_files_only else hub_unreachable_reason()
    try:
        return huggingface_hub.snapshot_download(
            repo_id, allow_patterns=["*.json", "*/*.json", "*.safetensors", "*/*.safetensors"],
            local_files_only=why is not None)
    except huggingface_hub.errors.HFValidationError as err:
        raise ValueError(f"{repo_id!r} is neither an existing file or folder nor a Hub repo id "
                         "('user/model')") from err
    except (huggingface_hub.errors.LocalEntryNotFoundError, OSError) as err:
        if why is None:
            raise
        raise HubUnreachableError(
            f"could not reach the Hub for {repo_id!r} ({why}) and it is not in the local cache. "
            + hub_advice("pass a local folder", cache=False)) from err
