"""LLM configuration: provider aliases, roles and prices from the ini options, resolved to a target.

ini lines (``[tool.pytest.ini_options]``)::

    mission_llm_providers = ["local = openai http://127.0.0.1:11434/v1",
                             "claude = anthropic https://api.anthropic.com key_env=ANTHROPIC_API_KEY"]
    mission_llm_roles = ["default = local:qwen2.5:7b-instruct", "judge = claude:claude-sonnet-4-5"]
    mission_llm_prices = ["claude-sonnet-4-5 3.00 15.00"]      # USD per million input / output tokens

:func:`parse_settings` turns those lines into :class:`LLMSettings`; :meth:`LLMSettings.resolve` turns
what a step names (``provider`` + ``model``, or ``role``) into a :class:`Target`. Keys are read from
the environment only when a call is made live (:meth:`Provider.key`), and every configured key's value
belongs on the masking list (:meth:`LLMSettings.secret_values`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from pytest_rustchain.errors import MissionError

__all__ = [
    "APIS",
    "BUILTIN_PROVIDERS",
    "ConfigError",
    "LLMOptions",
    "LLMSettings",
    "Price",
    "Provider",
    "Target",
    "parse_settings",
]

APIS: Final = ("openai", "anthropic")
_OPTIONS: Final = ("key_env", "max_tokens_field", "timeout")


class ConfigError(MissionError):
    """A provider, role or price line is malformed, or a step names an alias or role nobody configured."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Provider:
    """One provider alias: which wire API, where, and which environment variable holds its key."""

    alias: str
    api: str
    base_url: str
    key_env: str | None = None
    max_tokens_field: str | None = None
    """``max_completion_tokens`` for OpenAI's newer models; default ``max_tokens``."""
    timeout: float = 120.0
    """Overall deadline of one call in seconds, retries included."""
    builtin: bool = False

    def key(self, environ: Mapping[str, str] | None = None) -> str | None:
        if not self.key_env:
            return None
        value = (os.environ if environ is None else environ).get(self.key_env, "")
        return value or None


#: Loopback servers known by name, so RustChain's ``provider: ollama`` means what it says.
BUILTIN_PROVIDERS: Final[Mapping[str, Provider]] = {
    p.alias: p
    for p in (
        Provider(alias="ollama", api="openai", base_url="http://127.0.0.1:11434/v1", builtin=True),
        Provider(alias="shimmy", api="openai", base_url="http://127.0.0.1:11435/v1", builtin=True),
        Provider(alias="llamacpp", api="openai", base_url="http://127.0.0.1:8080/v1", builtin=True),
        Provider(alias="vllm", api="openai", base_url="http://127.0.0.1:8000/v1", builtin=True),
    )
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Price:
    input_per_million: float
    output_per_million: float

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_per_million + output_tokens * self.output_per_million) / 1_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """A resolved model: the provider to call and the model name to send."""

    provider: Provider
    model: str
    role: str | None = None

    @property
    def label(self) -> str:
        return f"{self.provider.alias}:{self.model}"


@dataclass(frozen=True, slots=True, kw_only=True)
class LLMSettings:
    providers: Mapping[str, Provider] = field(default_factory=dict)
    """Configured aliases; the built-in loopback aliases are added by :meth:`provider`."""
    roles: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    """role -> (alias, model)."""
    prices: Mapping[str, Price] = field(default_factory=dict)
    """model name -> price."""

    def provider(self, alias: str) -> Provider | None:
        return self.providers.get(alias) or BUILTIN_PROVIDERS.get(alias)

    def known_aliases(self) -> list[str]:
        return sorted({*self.providers, *BUILTIN_PROVIDERS})

    def resolve(self, *, provider: str | None = None, model: str | None = None, role: str | None = None) -> Target:
        """What a step names -> a target. Raises :class:`ConfigError` with a HINT naming the ini line."""
        if provider is None and role is None and model is not None and model in self.roles:
            role = model
            model = None
        if provider is not None:
            found = self.provider(provider)
            if found is None:
                raise ConfigError(
                    f"unknown LLM provider alias '{provider}' (known: {', '.join(self.known_aliases())})\n"
                    f'HINT: add "{provider} = openai http://HOST:PORT/v1" (or "= anthropic URL key_env=VAR") '
                    "to mission_llm_providers in the pytest configuration"
                )
            if not model:
                default = self.roles.get(role or "default")
                if default is not None and default[0] == provider:
                    model = default[1]
            if not model:
                raise ConfigError(
                    f"the step names provider '{provider}' but no model\n"
                    "HINT: add `model: NAME` to the step's parameters"
                )
            return Target(provider=found, model=model, role=role)
        name = role or "default"
        entry = self.roles.get(name)
        if entry is None:
            raise ConfigError(
                f"no LLM role '{name}' is configured\n"
                f'HINT: add "{name} = ALIAS:MODEL" to mission_llm_roles (and the alias to mission_llm_providers)'
            )
        alias, role_model = entry
        found = self.provider(alias)
        if found is None:
            raise ConfigError(
                f"role '{name}' names provider alias '{alias}', which is not configured\n"
                f'HINT: add "{alias} = openai http://HOST:PORT/v1" to mission_llm_providers'
            )
        return Target(provider=found, model=model or role_model, role=name)

    def price(self, model: str) -> Price | None:
        return self.prices.get(model)

    def secret_values(self, environ: Mapping[str, str] | None = None) -> list[str]:
        """The values of every configured ``key_env`` variable that is set (for the masking list)."""
        values = []
        for p in self.providers.values():
            key = p.key(environ)
            if key:
                values.append(key)
        return values

    @property
    def configured(self) -> bool:
        return bool(self.providers or self.roles)


@dataclass(frozen=True, slots=True, kw_only=True)
class LLMOptions:
    """The run's model settings: from the ini options and ``--mission-record-mode``."""

    settings: LLMSettings = field(default_factory=LLMSettings)
    cassette_dir: Path | None = None
    """None: a ``cassettes`` directory next to each mission file."""
    record_mode: str = "once"
    prune: bool = False
    recorders: dict[Path, Any] = field(default_factory=dict, compare=False, repr=False)
    """The recorder of each cassette in use: the repeats of a mission share one, so every repeat's
    answers land in the one file (``llm.runtime.build_runtime`` replaces it at repeat 0)."""


def _split_assignment(line: str, option: str) -> tuple[str, str]:
    name, sep, rest = line.partition("=")
    if not sep or not name.strip() or not rest.strip():
        raise ConfigError(f"{option}: cannot read {line!r}\nHINT: write NAME = VALUE")
    return name.strip(), rest.strip()


def _parse_provider(line: str) -> Provider:
    option = "mission_llm_providers"
    alias, rest = _split_assignment(line, option)
    words = rest.split()
    if len(words) < 2:
        raise ConfigError(
            f"{option}: {line!r} needs an API and a base URL\n"
            f'HINT: write "{alias} = openai http://127.0.0.1:11434/v1" or "{alias} = anthropic URL key_env=VAR"'
        )
    api, base_url, *extra = words
    if api not in APIS:
        raise ConfigError(f"{option}: {line!r}: API '{api}' is not one of {', '.join(APIS)}")
    if not base_url.startswith(("http://", "https://")):
        raise ConfigError(f"{option}: {line!r}: the base URL must start with http:// or https://")
    options: dict[str, str] = {}
    for word in extra:
        key, sep, value = word.partition("=")
        if not sep or key not in _OPTIONS:
            raise ConfigError(f"{option}: {line!r}: unknown option {word!r} (known: {', '.join(_OPTIONS)})")
        options[key] = value
    timeout = 120.0
    if "timeout" in options:
        try:
            timeout = float(options["timeout"])
        except ValueError:
            raise ConfigError(f"{option}: {line!r}: timeout must be a number of seconds") from None
        if timeout <= 0:
            raise ConfigError(f"{option}: {line!r}: timeout must be positive")
    return Provider(
        alias=alias,
        api=api,
        base_url=base_url.rstrip("/"),
        key_env=options.get("key_env") or None,
        max_tokens_field=options.get("max_tokens_field") or None,
        timeout=timeout,
    )


def parse_settings(providers: Iterable[str] = (), roles: Iterable[str] = (), prices: Iterable[str] = ()) -> LLMSettings:
    """Build settings from the three ini lists; every malformed line is a :class:`ConfigError`."""
    parsed: dict[str, Provider] = {}
    for line in providers:
        if line.strip():
            p = _parse_provider(line)
            parsed[p.alias] = p
    role_map: dict[str, tuple[str, str]] = {}
    for line in roles:
        if not line.strip():
            continue
        name, target = _split_assignment(line, "mission_llm_roles")
        alias, sep, model = target.partition(":")
        if not sep or not alias or not model:
            raise ConfigError(
                f"mission_llm_roles: {line!r}: write ROLE = ALIAS:MODEL (for example default = ollama:llama3)"
            )
        role_map[name] = (alias.strip(), model.strip())
    price_map: dict[str, Price] = {}
    for line in prices:
        words = line.split()
        if not words:
            continue
        try:
            model, inp, out = words
            price_map[model] = Price(input_per_million=float(inp), output_per_million=float(out))
        except ValueError:
            raise ConfigError(
                f"mission_llm_prices: {line!r}: write MODEL INPUT_USD OUTPUT_USD (per million tokens)"
            ) from None
    return LLMSettings(providers=parsed, roles=role_map, prices=price_map)
