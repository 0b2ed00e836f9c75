"""Checks docker-compose.yml and the Dockerfile by reading them (no Docker engine runs here).

Usage: check_deployment.py REPO_ROOT COMPOSE_SCHEMA_JSON TASK_STATUS_BRIDGE_EXECUTABLE
Prints one line per problem and exits 1 if there is any; prints "ok" otherwise.
"""
import json
import re
import subprocess
import sys

import jsonschema
import yaml

root, schema_path, executable = sys.argv[1:4]
problems = []


def check(condition, message):
    if not condition:
        problems.append(message)


compose = yaml.safe_load(open(f"{root}/docker-compose.yml"))
schema = json.load(open(schema_path))
# The schema declares draft 2019-09 (in a spelling jsonschema does not look up by itself).
validator = jsonschema.Draft201909Validator(schema)
for error in sorted(validator.iter_errors(compose), key=lambda e: list(e.path)):
    problems.append(f"compose schema: {'/'.join(map(str, error.path))}: {error.message}")

services = compose.get("services", {})
redis, bridge = services.get("redis", {}), services.get("bridge", {})
secrets = compose.get("secrets", {})

# Redis: persistence, ACL users from a secret, a health check, a volume for its data.
command = redis.get("command", [])
command = command.split() if isinstance(command, str) else [str(c) for c in command]
check("--appendonly" in command and command[command.index("--appendonly") + 1] == "yes", "redis: AOF persistence is not on")
check("--aclfile" in command, "redis: no --aclfile")
if "--aclfile" in command:
    acl = command[command.index("--aclfile") + 1]
    check(acl.startswith("/run/secrets/") and acl.rsplit("/", 1)[1] in redis.get("secrets", []), "redis: the ACL file is not a mounted secret")
check(any(str(v).endswith(":/data") for v in redis.get("volumes", [])), "redis: /data is not on a volume")
check("healthcheck" in redis, "redis: no health check")

# The bridge: two replicas, secrets as files, health check on /health/ready, waits for Redis.
check(bridge.get("deploy", {}).get("replicas") == 2, "bridge: not two replicas")
env = bridge.get("environment", {})
if isinstance(env, list):
    env = dict(item.split("=", 1) for item in env)
check(re.match(r"^redis://bridge@redis:6379/\d+$", env.get("REDIS_URL", "")) is not None, "bridge: REDIS_URL does not name the bridge user without a password")
for variable in ("TASKSTATUS_REDIS_PASSWORD_FILE", "TASKSTATUS_JWT_SECRET_FILE"):
    path = env.get(variable, "")
    check(path.startswith("/run/secrets/") and path.rsplit("/", 1)[1] in bridge.get("secrets", []), f"bridge: {variable} is not a mounted secret")
check("/health/ready" in " ".join(bridge.get("healthcheck", {}).get("test", [])), "bridge: the health check does not ask /health/ready")
check(bridge.get("depends_on", {}).get("redis", {}).get("condition") == "service_healthy", "bridge: does not wait for a healthy Redis")
check(env.get("TASKSTATUS_HTTP_HOST") == "0.0.0.0", "bridge: the HTTP server would only listen on loopback inside its container")

# The "sentinel" profile: two replicas of redis and three sentinels watching it, each data node with
# the ACL file and replication.conf (a failover may make any of them a replica, or the master), and
# deploy/sentinel.env pointing the bridges at exactly those sentinels.
def args_of(service):
    c = service.get("command", [])
    return c.split() if isinstance(c, str) else [str(x) for x in c]


data_nodes = {"redis": redis}
for name, service in services.items():
    if name.startswith("redis-replica-"):
        data_nodes[name] = service
        check(service.get("profiles") == ["sentinel"], f"{name}: not in the sentinel profile only")
        a = args_of(service)
        check("--replicaof" in a and a[a.index("--replicaof") + 1:a.index("--replicaof") + 3] == ["redis", "6379"], f"{name}: not a replica of redis")
check(len(data_nodes) == 3, "sentinel profile: not two replicas")
for name, service in data_nodes.items():
    a = args_of(service)
    check(len(a) > 1 and a[1] == "/run/secrets/redis_replication_conf" and "redis_replication_conf" in service.get("secrets", []),
          f"{name}: replication.conf (masteruser, masterauth) is not its configuration file")
    check("--aclfile" in a and "redis_users_acl" in service.get("secrets", []), f"{name}: no ACL file")
    check("--appendonly" in a and a[a.index("--appendonly") + 1] == "yes", f"{name}: AOF persistence is not on")
    check("--replica-announce-ip" in a and a[a.index("--replica-announce-ip") + 1] == name, f"{name}: does not announce its service name")
sentinel_services = {n: s for n, s in services.items() if n.startswith("sentinel-")}
check(len(sentinel_services) == 3, "sentinel profile: not three sentinels")
for name, service in sentinel_services.items():
    script = " ".join(args_of(service))
    check(service.get("profiles") == ["sentinel"], f"{name}: not in the sentinel profile only")
    check("sentinel monitor taskstatus redis 6379 2" in script, f"{name}: does not monitor redis as taskstatus with quorum 2")
    check("sentinel auth-user taskstatus sentinel" in script and "/run/secrets/sentinel_redis_password" in script
          and "sentinel_redis_password" in service.get("secrets", []), f"{name}: does not log in as the user sentinel")
    check("resolve-hostnames yes" in script and f"announce-ip {name}" in script, f"{name}: does not use and announce hostnames")
    check(re.search(r"--sentinel\b", script) is not None, f"{name}: not started with --sentinel")
sentinel_env = dict(line.split("=", 1) for line in open(f"{root}/deploy/sentinel.env").read().splitlines()
                    if "=" in line and not line.startswith("#"))
check(sentinel_env.get("COMPOSE_PROFILES") == "sentinel", "deploy/sentinel.env: does not turn the sentinel profile on")
named = {item.rsplit(":", 1)[0] for item in sentinel_env.get("TASKSTATUS_SENTINEL", "").split(",") if item}
check(named == set(sentinel_services), f"deploy/sentinel.env: TASKSTATUS_SENTINEL names {sorted(named)}, not the sentinel services")
check(int(sentinel_env.get("TASKSTATUS_MIN_REPLICAS", "0")) >= 1, "deploy/sentinel.env: --min-replicas is not at least 1")
for variable in ("TASKSTATUS_SENTINEL", "TASKSTATUS_SENTINEL_MASTER", "TASKSTATUS_MIN_REPLICAS"):
    check(variable in env and "${" + variable in str(env[variable]), f"bridge: {variable} is not taken from the environment file")
check(sentinel_env.get("TASKSTATUS_SENTINEL_MASTER", "taskstatus") == "taskstatus", "deploy/sentinel.env: the master name is not taskstatus")

# Every setting the compose file gives is one that `serve` knows.
help_text = subprocess.run([executable, "serve", "--help"], capture_output=True, text=True).stdout
for variable in env:
    if variable.startswith("TASKSTATUS_") or variable == "REDIS_URL":
        check(variable in help_text, f"bridge: {variable} is not a setting of serve")

# Secrets are files that deploy/make-secrets creates.
make_secrets = open(f"{root}/deploy/make-secrets").read()
for name, secret in secrets.items():
    path = secret.get("file", "")
    check(path.startswith("./deploy/secrets/"), f"secret {name}: not a file under deploy/secrets")
    check(path.rsplit("/", 1)[1] in make_secrets, f"secret {name}: deploy/make-secrets does not create {path}")
for service in services.values():
    for name in service.get("secrets", []):
        check(name in secrets, f"secret {name} is used but not defined")

# docker-compose.tls.yml, laid over docker-compose.yml: Redis in TLS only with client certificates,
# and otherwise the same data node; the bridges on rediss:// with the CA and a client certificate.
tls = yaml.safe_load(open(f"{root}/docker-compose.tls.yml"))
for error in sorted(validator.iter_errors(tls), key=lambda e: list(e.path)):
    problems.append(f"compose schema (docker-compose.tls.yml): {'/'.join(map(str, error.path))}: {error.message}")
tls_services, tls_secrets = tls.get("services", {}), tls.get("secrets", {})
tls_redis, tls_bridge = tls_services.get("redis", {}), tls_services.get("bridge", {})
a = args_of(tls_redis)


def value(args, flag):
    return args[args.index(flag) + 1] if flag in args and args.index(flag) + 1 < len(args) else None


check(value(a, "--port") == "0" and value(a, "--tls-port") == "6379", "tls: redis does not speak TLS only on 6379")
check(value(a, "--tls-auth-clients") == "yes", "tls: redis does not require client certificates")
for flag in ("--tls-cert-file", "--tls-key-file", "--tls-ca-cert-file"):
    path = value(a, flag) or ""
    check(path.startswith("/run/secrets/") and path.rsplit("/", 1)[1] in tls_redis.get("secrets", []), f"tls: redis {flag} is not a mounted secret")
base = args_of(redis)
for flag in ("--appendonly", "--appendfsync", "--aclfile", "--replica-announce-ip"):
    check(value(a, flag) == value(base, flag), f"tls: redis {flag} differs from docker-compose.yml's")
check(set(redis.get("secrets", [])) <= set(tls_redis.get("secrets", [])), "tls: redis loses secrets of docker-compose.yml (lists replace)")
check("--tls" in args_of({"command": tls_redis.get("healthcheck", {}).get("test", [])}), "tls: the redis health check does not use TLS")
tls_env = tls_bridge.get("environment", {})
check(re.match(r"^rediss://bridge@redis:6379/\d+$", tls_env.get("REDIS_URL", "")) is not None, "tls: the bridge's REDIS_URL is not rediss://bridge@redis:6379")
for variable in ("TASKSTATUS_REDIS_TLS_CA_FILE", "TASKSTATUS_REDIS_TLS_CERT_FILE", "TASKSTATUS_REDIS_TLS_KEY_FILE"):
    path = tls_env.get(variable, "")
    check(path.startswith("/run/secrets/") and path.rsplit("/", 1)[1] in tls_bridge.get("secrets", []), f"tls: bridge {variable} is not a mounted secret")
    check(variable in help_text, f"tls: {variable} is not a setting of serve")
check(set(bridge.get("secrets", [])) <= set(tls_bridge.get("secrets", [])), "tls: the bridge loses secrets of docker-compose.yml (lists replace)")
for name, secret in tls_secrets.items():
    path = secret.get("file", "")
    check(path.startswith("./deploy/secrets/tls/") and path.rsplit("/", 1)[1].split(".")[0] in ("ca", "redis", "client"),
          f"tls secret {name}: not a file deploy/make-secrets makes under deploy/secrets/tls")
for service in tls_services.values():
    for name in service.get("secrets", []):
        check(name in tls_secrets or name in secrets, f"tls: secret {name} is used but not defined")

# The Dockerfile: multi-stage, hiredis at run time, a non-root user, HEALTHCHECK on /health/ready.
dockerfile = open(f"{root}/Dockerfile").read()
stages = re.findall(r"^FROM\s+(\S+)", dockerfile, re.M)
check(len(stages) >= 2 and stages[0].startswith("swift:"), "Dockerfile: not a multi-stage build from a Swift image")
check(stages[-1].startswith("debian:") and "slim" in stages[-1], "Dockerfile: the runtime is not slim Debian")
runtime = dockerfile[dockerfile.rindex("FROM "):]
check("libhiredis" in runtime, "Dockerfile: the runtime does not install libhiredis")
check("libssl3" in runtime and "ca-certificates" in runtime, "Dockerfile: the runtime lacks OpenSSL or the system's CAs (TLS to Redis)")
check("libssl-dev" in dockerfile[:dockerfile.rindex("FROM ")], "Dockerfile: the build stage lacks libssl-dev")
users = re.findall(r"^USER\s+(\S+)", runtime, re.M)
check(bool(users) and users[-1].split(":")[0] not in ("root", "0"), "Dockerfile: runs as root")
check(re.search(r"^HEALTHCHECK .*", dockerfile, re.M) is not None and "/health/ready" in dockerfile, "Dockerfile: no HEALTHCHECK on /health/ready")
check(".build" in open(f"{root}/.dockerignore").read(), ".dockerignore: .build is sent to the daemon")

for problem in problems:
    print(problem)
print("ok" if not problems else f"{len(problems)} problems")
sys.exit(1 if problems else 0)
