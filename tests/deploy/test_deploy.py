"""deploy/: manifests parsed and checked for what production needs; the image's entry point
and its environment-variable configuration run for real."""

from __future__ import annotations

import asyncio
import configparser
import json
import os
import re
import shlex
import signal
import sys
from pathlib import Path

import httpx
import yaml

from engine.registry import ENGINE_NAMES
from gateway.dialplan import check

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "kubernetes"


def manifests() -> dict[str, dict]:
    docs = {}
    for path in K8S.glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            docs[doc["kind"]] = doc
    return docs


def test_deploy_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}


def test_deploy_deployment_probes_grace_and_drain_limit():
    deployment = manifests()["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    env = {e["name"]: e.get("value") for e in container["env"]}
    # The kubelet must not SIGKILL before the gateway's own drain limit has passed.
    assert pod["terminationGracePeriodSeconds"] > float(env["OVERTALK_DRAIN_LIMIT"])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert container["envFrom"][0]["secretRef"]["name"] == manifests()["Secret"]["metadata"]["name"]


def test_deploy_service_hpa_pdb_point_at_the_deployment():
    docs = manifests()
    labels = docs["Deployment"]["spec"]["template"]["metadata"]["labels"]
    port_names = {
        p["name"] for p in docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]["ports"]
    }
    assert docs["Service"]["spec"]["selector"].items() <= labels.items()
    assert {p["targetPort"] for p in docs["Service"]["spec"]["ports"]} <= port_names
    assert docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    hpa = docs["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == docs["Deployment"]["metadata"]["name"]
    assert hpa["metrics"][0]["pods"]["metric"]["name"] == "overtalk_active_calls"


def test_deploy_secret_carries_the_variables_the_gateway_reads():
    assert set(manifests()["Secret"]["stringData"]) == {
        "TWILIO_AUTH_TOKEN",
        "TWILIO_ACCOUNT_SID",
        "OVERTALK_STORE",
        "OVERTALK_ADMIN_TOKEN",
    }


def test_deploy_configmap_dial_plan_passes_check(tmp_path):
    for name, text in manifests()["ConfigMap"]["data"].items():
        plan = tmp_path / name
        plan.write_text(text)
        assert check(plan, ENGINE_NAMES) == []


def test_deploy_compose_and_systemd_give_calls_time_to_drain():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    grace = compose["services"]["gateway"]["stop_grace_period"]
    assert re.fullmatch(r"\d+m", grace) and int(grace[:-1]) >= 5
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read_string((DEPLOY / "overtalk.service").read_text())
    service = unit["Service"]
    assert service["ExecStart"].endswith("overtalk serve")
    assert service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) > 3600  # the default drain limit
    assert service["ExecReload"].startswith("/bin/kill -HUP")


def dockerfile() -> tuple[dict[str, str], list[str], str]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    final = text[text.rindex("\nFROM ") :]  # the runtime stage
    env: dict[str, str] = {}
    for line in final.splitlines():
        if line.startswith("ENV "):
            for item in shlex.split(line[4:]):
                key, _, value = item.partition("=")
                env[key] = value
    entry = json.loads(re.search(r"^ENTRYPOINT (.+)$", final, re.M).group(1))
    return env, entry, final


def test_deploy_dockerfile_runs_non_root_with_healthcheck():
    env, entry, final = dockerfile()
    assert re.search(r"^USER 10001$", final, re.M)
    assert "HEALTHCHECK" in final and "/healthz" in final
    assert entry[-1] == "overtalk" and "tini" in entry[0]
    assert f"EXPOSE {env['OVERTALK_PORT']}" in final


async def test_deploy_image_entry_point_configured_by_environment(tmp_path):
    """`overtalk serve` with the image's environment (host and paths moved for the test)."""
    env, _, _ = dockerfile()
    plan = tmp_path / "default.yaml"
    plan.write_text(manifests()["ConfigMap"]["data"]["default.yaml"])
    run_env = {
        **os.environ,
        **env,
        "OVERTALK_HOST": "127.0.0.1",
        "OVERTALK_PORT": "0",  # the kernel chooses; the log says which
        "OVERTALK_DIALPLAN": str(plan),
        "OVERTALK_RECORDS_DIR": str(tmp_path / "records"),
        # The image's default engine is the embedded one; this test is about configuration,
        # so a light engine keeps it quick.
        "OVERTALK_ENGINE": "echo",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "serve", env=run_env, stderr=asyncio.subprocess.PIPE
    )
    lines: list[str] = []
    try:
        url = ""
        while not url:  # the log says where it listens
            line = await asyncio.wait_for(proc.stderr.readline(), 60)
            if not line:
                raise AssertionError("gateway exited at start:\n" + "\n".join(lines))
            lines.append(line.decode())
            found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", lines[-1])
            url = found.group(1) if found else ""
        async with httpx.AsyncClient() as http:
            health = await http.get(f"{url}/healthz")
            assert health.json()["status"] == "ok"
        proc.send_signal(signal.SIGTERM)
        lines += (await asyncio.wait_for(proc.stderr.read(), 20)).decode().splitlines()
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    # OVERTALK_LOG_FORMAT=json from the image: every line is a JSON object.
    entries = [json.loads(line) for line in lines if line.strip()]
    assert any(str(plan) in e["msg"] for e in entries)  # OVERTALK_DIALPLAN was used


def test_deploy_call_data_on_shared_storage_with_retention():
    docs = manifests()
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    claim = docs["PersistentVolumeClaim"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]  # every replica shares it
    volumes = {v["name"]: v for v in pod["volumes"]}
    shared = next(n for n, v in volumes.items() if "persistentVolumeClaim" in v)
    assert volumes[shared]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    mount = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == shared)
    assert env["OVERTALK_AUDIO_STORE"].removeprefix("file://").startswith(mount + "/")
    assert env["OVERTALK_SPOOL_DIR"].startswith(mount + "/")
    assert float(env["OVERTALK_RETAIN_DAYS"]) > 0
    secret = docs["Secret"]["stringData"]
    assert secret["OVERTALK_STORE"].startswith("postgresql://")  # not SQLite on a pod's disk
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]["gateway"]
    assert compose["environment"]["OVERTALK_STORE"].startswith("postgresql://")
    assert any(v.startswith("call-data:") for v in compose["volumes"])
    runbook = (DEPLOY / "RUNBOOK.md").read_text()
    section = runbook[runbook.index("## 7. Call data") :]
    for needed in ("pg_dump", "pg_restore", "rsync", "sqlite3", "OVERTALK_RETAIN_DAYS"):
        assert needed in section
