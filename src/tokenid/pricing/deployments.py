"""Azure OpenAI deployments: what model a deployment name serves and how it is deployed.

On Azure the ``model`` argument of a call is a deployment name the user chose (``my-prod-4o``), so the price
needs a map from deployment to model, version and deployment type. The type matters because Azure bills Data
Zone and Regional deployments at a premium over Global, batch at a discount, and provisioned ones by the hour.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from tokenid.errors import ConfigError

__all__ = [
    "DEFAULT_DEPLOYMENT_TYPE",
    "DEPLOYMENT_TYPES",
    "DEPLOYMENT_TYPE_ALIASES",
    "DeploymentSpec",
    "normalize_deployment_type",
    "parse_deployments",
]

#: Canonical deployment types. "regional" is what Azure's SKU calls "Standard" (PRICING.md §1, "Regional
#: (Standard)"); every provisioned flavour (global, data zone, regional) is one type since none bills per token.
DEPLOYMENT_TYPES: tuple[str, ...] = (
    "global",
    "data_zone",
    "regional",
    "provisioned",
    "global_batch",
    "data_zone_batch",
)

#: Other spellings accepted for a type (after lower-casing and turning '-' and ' ' into '_'), including Azure's
#: SKU names as the portal and ``az cognitiveservices account deployment list`` print them.
DEPLOYMENT_TYPE_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "standard": "regional",
        "regional_standard": "regional",
        "globalstandard": "global",
        "global_standard": "global",
        "datazone": "data_zone",
        "datazonestandard": "data_zone",
        "data_zone_standard": "data_zone",
        "globalbatch": "global_batch",
        "datazonebatch": "data_zone_batch",
        "provisionedmanaged": "provisioned",
        "provisioned_managed": "provisioned",
        "globalprovisionedmanaged": "provisioned",
        "global_provisioned": "provisioned",
        "datazoneprovisionedmanaged": "provisioned",
        "data_zone_provisioned": "provisioned",
        "ptu": "provisioned",
    }
)

#: Type assumed when a deployment has no entry or its entry gives none: Global Standard is Azure's default SKU
#: for new deployments and the only one genai-prices' list prices match.
DEFAULT_DEPLOYMENT_TYPE = "global"

_SPEC_KEYS = ("model", "version", "type")


def normalize_deployment_type(value: object, key: str) -> str:
    """The canonical type for ``value`` (any accepted spelling), or ConfigError naming ``key``."""
    if isinstance(value, str):
        folded = value.strip().lower().replace("-", "_").replace(" ", "_")
        if folded in DEPLOYMENT_TYPES:
            return folded
        if folded in DEPLOYMENT_TYPE_ALIASES:
            return DEPLOYMENT_TYPE_ALIASES[folded]
    accepted = ", ".join(repr(t) for t in DEPLOYMENT_TYPES)
    raise ConfigError(
        f"{key} must be one of {accepted} ('standard' means regional; Azure SKU names such as 'GlobalStandard', "
        f"'DataZoneStandard', 'GlobalBatch' and 'ProvisionedManaged' are accepted too); got {value!r}"
    )


def _normalize_version(value: object, key: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.date):  # YAML/TOML read an unquoted 2024-08-06 as a date
        return value.isoformat()
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise ConfigError(
        f"{key} must be a version string such as '2024-08-06' or '0613' (quote it in YAML/TOML so a leading "
        f"zero survives); got {value!r}"
    )


@dataclass(frozen=True, slots=True)
class DeploymentSpec:
    """What an Azure deployment serves: model name (Azure or OpenAI spelling), optional version, deployment type.

    ``type`` is stored canonical (see :data:`DEPLOYMENT_TYPES`); any accepted spelling may be passed.
    """

    model: str
    version: str | None = None
    type: str = DEFAULT_DEPLOYMENT_TYPE

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ConfigError(
                f"DeploymentSpec.model must be a non-empty model name such as 'gpt-4o'; got {self.model!r}"
            )
        object.__setattr__(self, "model", self.model.strip())
        object.__setattr__(self, "version", _normalize_version(self.version, "DeploymentSpec.version"))
        object.__setattr__(self, "type", normalize_deployment_type(self.type, "DeploymentSpec.type"))

    @property
    def model_ref(self) -> str:
        """Model and version as one name, e.g. ``gpt-4o-2024-08-06`` (just the model when unversioned)."""
        return f"{self.model}-{self.version}" if self.version else self.model


def parse_deployments(value: Mapping[str, object] | None, *, key: str = "deployments") -> dict[str, DeploymentSpec]:
    """Validate a deployment map: ``{name: "gpt-4o-mini"}`` or ``{name: {"model", "version", "type"}}``.

    Deployment names are matched exactly. Errors name the offending entry, e.g. ``deployments['my-dep'].typ``.
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"{key} must be a mapping of deployment name to a model name or to "
            f"{{'model': ..., 'version': ..., 'type': ...}}; got {type(value).__name__}"
        )
    specs: dict[str, DeploymentSpec] = {}
    for name, entry in value.items():
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{key}: deployment names must be non-empty strings; got {name!r}")
        where = f"{key}[{name!r}]"
        specs[name] = _parse_entry(entry, where)
    return specs


def _parse_entry(entry: object, where: str) -> DeploymentSpec:
    if isinstance(entry, DeploymentSpec):
        return entry
    if isinstance(entry, str):
        if not entry.strip():
            raise ConfigError(f"{where} must be a model name such as 'gpt-4o-mini'; got an empty string")
        return DeploymentSpec(model=entry)
    if not isinstance(entry, Mapping):
        raise ConfigError(
            f"{where} must be a model name (str) or a mapping with keys 'model', 'version', 'type'; "
            f"got {type(entry).__name__}"
        )
    for field_name in entry:
        if field_name not in _SPEC_KEYS:
            accepted = ", ".join(repr(k) for k in _SPEC_KEYS)
            raise ConfigError(f"{where}.{field_name}: unknown key; accepted keys are {accepted}")
    model = entry.get("model")
    if not isinstance(model, str) or not model.strip():
        raise ConfigError(f"{where}.model is required: a model name such as 'gpt-4o'; got {model!r}")
    version = _normalize_version(entry.get("version"), f"{where}.version")
    raw_type = entry.get("type")
    kind = DEFAULT_DEPLOYMENT_TYPE if raw_type is None else normalize_deployment_type(raw_type, f"{where}.type")
    return DeploymentSpec(model=model, version=version, type=kind)
