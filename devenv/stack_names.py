"""Names shared by the stack, the config CLI and the local cloud: one place, so they cannot drift.

Shipped in devenv's wheel (devenv must run without the CDK app's package); the stack reads them from
here through `stack/names.py`. Kept free of aws-cdk-lib imports so the CLI reads them without loading
jsii.
"""

from __future__ import annotations

STACK_NAME = "LlmProxyStack"
LOADGEN_STACK_NAME = "LlmProxyLoadGenStack"  # the load generator's own stack, deployed only when asked
NAME_PREFIX = "llm-proxy"

# Secrets Manager: short name -> full secret name.
SECRETS = {
    "management-token": f"{NAME_PREFIX}/management-token",
    "encryption-key": f"{NAME_PREFIX}/encryption-key",
    "admin-password": f"{NAME_PREFIX}/admin-password",
    "database-credentials": f"{NAME_PREFIX}/database-credentials",
    "database-url": f"{NAME_PREFIX}/database-url",
    "openai-api-key": f"{NAME_PREFIX}/openai-api-key",
}

# SSM Parameter Store: short name -> parameter name.
PARAMETERS = {
    "log-level": f"/{NAME_PREFIX}/log-level",
    "cache-enabled": f"/{NAME_PREFIX}/cache-enabled",
    "rate-limit-rpm": f"/{NAME_PREFIX}/rate-limit-rpm",
    "redis-url": f"/{NAME_PREFIX}/redis-url",
    "upstream-url": f"/{NAME_PREFIX}/upstream-url",
}

# What each container reads, as ECS `secrets` (valueFrom): env var -> short secret / parameter name.
PROXY_SECRETS = {
    "MANAGEMENT_TOKEN": "management-token",
    "DATABASE_URL": "database-url",
    "ENCRYPTION_KEY": "encryption-key",
}
PROXY_PARAMETERS = {
    "LOG_LEVEL": "log-level",
    "HTTP_CACHE_ENABLED": "cache-enabled",
    "RATE_LIMIT_RPM": "rate-limit-rpm",
    "REDIS_CACHE_URL": "redis-url",
    "REDIS_EVENT_URL": "redis-url",
    "OPENAI_API_URL": "upstream-url",
}
DISPATCHER_SECRETS = {
    "DATABASE_URL": "database-url",
}
DISPATCHER_PARAMETERS = {
    "LOG_LEVEL": "log-level",
    "REDIS_EVENT_URL": "redis-url",
}
OPENAI_API_KEY_ENV = "OPENAI_API_KEY"

CONTAINER_PORT = 8080
PROXY_COMMAND = ["proxy"]
DISPATCHER_COMMAND = ["dispatcher"]
DATABASE_NAME = "llmproxy"
DATABASE_USER = "llmproxy"
ECR_REPOSITORY_NAME = NAME_PREFIX

# The load generator (LoadGenStack): Locust from the loadtest image, one master and N workers.
LOADGEN_NAME = f"{NAME_PREFIX}-loadgen"  # its cluster, log group prefix and ECR repository
LOADTEST_REPOSITORY_NAME = f"{NAME_PREFIX}-loadtest"
LOCUST_WEB_PORT = 8089
LOCUST_MASTER_PORT = 5557
LOADGEN_NAMESPACE = "loadgen.local"  # Cloud Map private DNS: workers find the master at master.<namespace>
LOADGEN_MASTER_SERVICE = "locust-master"
LOADGEN_WORKER_SERVICE = "locust-worker"
LOADGEN_OUTPUTS = (
    "LoadGenClusterName",
    "LoadGenMasterServiceName",
    "LoadGenWorkerServiceName",
    "LoadGenResultsBucket",
    "LoadGenLogGroup",
    "LoadGenTargetUrl",
)

# Stable CloudFormation output keys (load and failover tests read them for --target aws).
OUTPUTS = (
    "AlbUrl",
    "AlbDnsName",
    "ClusterName",
    "ProxyServiceName",
    "DispatcherServiceName",
    "ManagementTokenSecretArn",
    "EncryptionKeySecretArn",
    "AdminPasswordSecretArn",
    "DatabaseSecretArn",
    "DatabaseUrlSecretArn",
    "DatabaseEndpoint",
    "DatabaseClusterId",
    "RedisEndpoint",
    "RedisReplicationGroupId",
    "EcrRepositoryUri",
    "ImageTag",
    "NextStep",
)
