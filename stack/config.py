"""Every knob of the stack in one typed props object (the seed's "Configuration Props" table and more).

Props come from a JSON file (`stack/props/<target>.json`, `--props FILE`) and/or the cdk context
(`cdk synth -c imageTag=abc`); context wins over the file. A bad value or combination raises PropsError
naming the prop, before any construct is built. Kept free of aws-cdk-lib imports.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

PROPS_DIR = Path(__file__).resolve().parent / "props"

# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
FARGATE_CPU_MEMORY = {
    256: (512, 1024, 2048),
    512: (1024, 2048, 3072, 4096),
    1024: tuple(range(2048, 8193, 1024)),
}


class PropsError(ValueError):
    """A prop (or combination) the stack cannot be built from; the message names the prop."""


class StackProps(BaseModel):
    """The stack's props; JSON keys are camelCase (`existingVpcId`), Python attributes snake_case."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    # Network
    existing_vpc_id: str | None = Field(None, description="import this VPC instead of creating one")
    vpc_cidr: str = Field("10.0.0.0/16", description="CIDR of a new VPC")
    nat_gateways: int = Field(1, ge=0, le=2, description="1 saves ~$32/month; 2 for HA")
    # Domain and TLS
    domain_name: str | None = Field(None, description="e.g. api.example.com; enables HTTPS")
    existing_certificate_arn: str | None = Field(None, description="import this ACM certificate")
    hosted_zone_id: str | None = Field(None, description="Route 53 zone for the alias and DNS validation")
    hosted_zone_name: str | None = Field(None, description="the zone's name, e.g. example.com")
    enable_https: bool | None = Field(
        None, description="default: true when domainName or a certificate is given"
    )
    # Aurora
    aurora_min_capacity: float = Field(0.5, ge=0, le=256)
    aurora_max_capacity: float = Field(4, ge=1, le=256)
    aurora_readers: int = Field(0, ge=0, le=15, description="reader instances besides the writer")
    aurora_backup_retention_days: int = Field(7, ge=1, le=35)
    enable_db_credential_rotation: bool = Field(False, description="rotate the DB password (see README)")
    deletion_protection: bool = Field(True, description="protect the database from deletion")
    # Redis
    redis_node_type: str = Field("cache.t4g.micro")
    redis_num_nodes: int = Field(1, ge=1, le=6, description="2+ adds a replica with automatic failover")
    redis_engine_version: str = Field("7.1")
    # ECS
    proxy_min_tasks: int = Field(1, ge=0, le=100)
    proxy_max_tasks: int = Field(4, ge=1, le=100)
    proxy_cpu: int = Field(256, description="Fargate CPU units (256 = 0.25 vCPU)")
    proxy_memory_mib: int = Field(512)
    dispatcher_cpu: int = Field(256)
    dispatcher_memory_mib: int = Field(512)
    use_arm64: bool = Field(True, description="Graviton: ~20% cheaper; the image is multi-arch")
    image_tag: str | None = Field(None, description="the image tag the services run; none: desiredCount 0")
    cpu_target_percent: int = Field(70, ge=10, le=95)
    requests_per_target: int = Field(500, ge=1)
    scale_out_cooldown_seconds: int = Field(120, ge=0)
    scale_in_cooldown_seconds: int = Field(600, ge=0)
    container_insights: bool = Field(False, description="ECS Container Insights (extra CloudWatch cost)")
    # Load balancer target group
    health_check_path: str = Field("/health")
    health_check_interval_seconds: int = Field(10, ge=5, le=300)
    healthy_threshold_count: int = Field(2, ge=2, le=10)
    unhealthy_threshold_count: int = Field(3, ge=2, le=10)
    deregistration_delay_seconds: int = Field(30, ge=0, le=3600)
    # Application config (SSM parameters and optional secrets)
    upstream_url: str = Field("https://api.openai.com", description="OPENAI_API_URL for the proxy")
    log_level: str = Field("info")
    cache_enabled: bool = Field(True)
    rate_limit_rpm: int = Field(0, ge=0, description="requests per minute per token; 0 = no limit")
    create_open_ai_api_key_secret: bool = Field(False, description="an openai-api-key secret for the proxy")
    # Load generator (LlmProxyLoadGenStack, deployed only when asked)
    load_gen_workers: int = Field(2, ge=1, le=50, description="Locust worker tasks")
    load_gen_image_tag: str | None = Field(
        None, description="the loadtest image tag master and workers run; none: desiredCount 0"
    )
    load_gen_worker_cpu: int = Field(1024, description="Fargate CPU units of a worker (Locust uses one core)")
    load_gen_worker_memory_mib: int = Field(2048)
    # Observability
    enable_x_ray: bool = Field(False, alias="enableXRay")
    log_retention_days: int = Field(14)
    alarm_email: str | None = Field(None, description="subscribe this address to the alarms' SNS topic")

    @model_validator(mode="after")
    def _check_combinations(self) -> StackProps:
        problems = []
        if self.aurora_min_capacity > self.aurora_max_capacity:
            problems.append(
                f"auroraMinCapacity ({self.aurora_min_capacity}) is above "
                f"auroraMaxCapacity ({self.aurora_max_capacity})"
            )
        if (self.aurora_min_capacity * 2) % 1 or (self.aurora_max_capacity * 2) % 1:
            problems.append("auroraMinCapacity/auroraMaxCapacity must be multiples of 0.5 ACU")
        if self.proxy_max_tasks < self.proxy_min_tasks:
            problems.append(
                f"proxyMaxTasks ({self.proxy_max_tasks}) is below proxyMinTasks ({self.proxy_min_tasks})"
            )
        try:
            network = ipaddress.IPv4Network(self.vpc_cidr, strict=True)
            if not 16 <= network.prefixlen <= 22:
                problems.append(f"vpcCidr {self.vpc_cidr!r} must be a /16 to /22 (six subnets across 2 AZs)")
        except ValueError as exc:
            problems.append(f"vpcCidr {self.vpc_cidr!r} is not a valid IPv4 CIDR ({exc})")
        if self.existing_vpc_id is not None and not re.fullmatch(r"vpc-[0-9a-f]{8,17}", self.existing_vpc_id):
            problems.append(f"existingVpcId {self.existing_vpc_id!r} is not a VPC id (vpc-0123abcd...)")
        if self.enable_https is True and not (self.domain_name or self.existing_certificate_arn):
            problems.append(
                "enableHttps needs domainName (a certificate is created) or existingCertificateArn"
            )
        if self.existing_certificate_arn and not self.existing_certificate_arn.startswith("arn:"):
            problems.append(f"existingCertificateArn {self.existing_certificate_arn!r} is not an ARN")
        if (self.hosted_zone_id is None) != (self.hosted_zone_name is None):
            problems.append("hostedZoneId and hostedZoneName go together")
        if self.hosted_zone_id and not self.domain_name:
            problems.append("hostedZoneId needs domainName (the alias record's name)")
        if (
            self.domain_name
            and self.hosted_zone_name
            and not self.domain_name.endswith(self.hosted_zone_name.rstrip("."))
        ):
            problems.append(
                f"domainName {self.domain_name!r} is not inside hostedZoneName {self.hosted_zone_name!r}"
            )
        if self.log_retention_days not in LOG_RETENTION_DAYS:
            problems.append(f"logRetentionDays {self.log_retention_days} is not one of {LOG_RETENTION_DAYS}")
        for prefix, cpu, memory in (
            ("proxy", self.proxy_cpu, self.proxy_memory_mib),
            ("dispatcher", self.dispatcher_cpu, self.dispatcher_memory_mib),
            ("loadGenWorker", self.load_gen_worker_cpu, self.load_gen_worker_memory_mib),
        ):
            if cpu not in FARGATE_CPU_MEMORY:
                problems.append(f"{prefix}Cpu {cpu} is not one of {sorted(FARGATE_CPU_MEMORY)}")
            elif memory not in FARGATE_CPU_MEMORY[cpu]:
                problems.append(
                    f"{prefix}MemoryMib {memory} does not fit {prefix}Cpu {cpu}: {FARGATE_CPU_MEMORY[cpu]}"
                )
        if not self.redis_node_type.startswith("cache."):
            problems.append(f"redisNodeType {self.redis_node_type!r} must start with 'cache.'")
        if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", self.upstream_url):
            problems.append(f"upstreamUrl {self.upstream_url!r} is not an http(s) URL")
        if self.log_level.lower() not in ("debug", "info", "warning", "warn", "error"):
            problems.append(f"logLevel {self.log_level!r} is not one of debug, info, warning, error")
        if not self.health_check_path.startswith("/"):
            problems.append(f"healthCheckPath {self.health_check_path!r} must start with '/'")
        for key, tag in (("imageTag", self.image_tag), ("loadGenImageTag", self.load_gen_image_tag)):
            if tag is not None and not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", tag):
                problems.append(f"{key} {tag!r} is not a valid image tag")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def https(self) -> bool:
        """Whether the ALB serves HTTPS (443, with an HTTP->HTTPS redirect on 80)."""
        if self.enable_https is not None:
            return self.enable_https
        return bool(self.domain_name or self.existing_certificate_arn)

    def to_json(self) -> dict[str, Any]:
        """The props as camelCase JSON (only the values that differ from the defaults)."""
        return self.model_dump(by_alias=True, exclude_defaults=True)


def parse_props(values: Mapping[str, Any], source: str = "props") -> StackProps:
    """Validate raw camelCase props; a PropsError names each bad prop and where it came from."""
    try:
        return StackProps.model_validate(dict(values))
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            prop = ".".join(str(part) for part in error["loc"])
            if error["type"] == "extra_forbidden":
                lines.append(f"unknown prop {prop!r}")
            elif not prop:
                lines.append(str(error["msg"]).removeprefix("Value error, "))
            else:
                lines.append(f"prop {prop!r}: {error['msg']} (got {error.get('input')!r})")
        raise PropsError(f"invalid stack props ({source}): " + "; ".join(lines)) from None


def read_props_file(path: Path) -> dict[str, Any]:
    """The raw props of a JSON file; a missing or malformed file raises PropsError."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise PropsError(f"props file {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise PropsError(f"props file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PropsError(f"props file {path} must hold a JSON object of props")
    return data


def load_props(props_file: Path | None = None, context: Mapping[str, Any] | None = None) -> StackProps:
    """Props from a file (optional) overlaid with context values whose keys are props."""
    values: dict[str, Any] = read_props_file(props_file) if props_file else {}
    known = {field.alias or name for name, field in StackProps.model_fields.items()}
    values.update({key: value for key, value in (context or {}).items() if key in known})
    return parse_props(values, source=str(props_file) if props_file else "context")


def target_props_file(target: str) -> Path:
    """The props file of a deploy target (`local`, `aws`)."""
    return PROPS_DIR / f"{target}.json"
