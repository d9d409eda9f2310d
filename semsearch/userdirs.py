"""Where semsearch keeps things of the user's, outside any index: the default index, config and cache folders.

Each has an environment override first (``SEMSEARCH_HOME``, ``SEMSEARCH_CONFIG``, ``SEMSEARCH_CACHE``), then the
platform's folder (platformdirs).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

APP_NAME = "semsearch"
ENV_HOME = "SEMSEARCH_HOME"  # the index folder (read with the other settings, in config.py)
ENV_CONFIG = "SEMSEARCH_CONFIG"  # the user config file, instead of the one in the user config folder
ENV_CACHE = "SEMSEARCH_CACHE"  # the cache folder; an empty value turns the cache off
USER_CONFIG_FILE = "config.toml"


def default_index_dir() -> Path:
    """The index used when no flag, variable or config file names one."""
    from platformdirs import user_data_path

    return user_data_path(APP_NAME, appauthor=False) / "index"


def user_config_file(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get(ENV_CONFIG):
        return Path(env[ENV_CONFIG]).expanduser().absolute()
    from platformdirs import user_config_path

    return user_config_path(APP_NAME, appauthor=False) / USER_CONFIG_FILE


def cache_dir() -> Path | None:
    """The cache folder, or None when the user turned it off (``SEMSEARCH_CACHE=``)."""
    configured = os.environ.get(ENV_CACHE)
    if configured is not None:
        return Path(configured).expanduser() if configured.strip() else None
    from platformdirs import user_cache_path

    return user_cache_path(APP_NAME, appauthor=False)
