"""The files under deploy/ (systemd units, Dockerfile, Kubernetes + KEDA) hold commands the CLI accepts.

No container runtime or cluster here: the files are parsed, and every
`microspider ...` command line in them is parsed by the real click commands
(options, types, arguments) and its run options converted as `run` converts them.
"""
import json
import os
import re
import shlex
import sys

import click
import pytest
import yaml

from microspider.cli import cli
from microspider.config import BY_NAME, convert
from microspider.errors import ConfigError
from microspider.spider import load_spider
from microspider.state import keys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEPLOY = os.path.join(REPO, "deploy")
IMAGE_CRAWL = "/crawl/"                     # the Dockerfile copies examples/ctrip to /crawl/ctrip
IN_REPO = os.path.join(REPO, "examples") + os.sep


def parsed(argv):
    """The click context of `microspider ARGV...` (raises click's errors if the CLI refuses it)."""
    command, args = cli, list(argv)
    parent = cli.make_context("microspider", [], resilient_parsing=True)
    while isinstance(command, click.Group):
        name, args = args[0], args[1:]
        command = command.get_command(parent, name)
        if command is None:
            raise click.UsageError("no command %r in %s" % (name, " ".join(argv)))
        if isinstance(command, click.Group):
            parent = command.make_context(name, [], parent=parent, resilient_parsing=True)
    return command.make_context(name, args, parent=parent)


def accept(argv):
    """Parse `argv` with the real CLI and convert every run option it sets; returns its params."""
    params = parsed(argv).params
    for name, value in params.items():
        if name in BY_NAME and value is not None:
            convert(name, value, "deploy file")
    return params


def systemd_commands():
    for unit in sorted(os.listdir(os.path.join(DEPLOY, "systemd"))):
        with open(os.path.join(DEPLOY, "systemd", unit)) as f:
            for line in f:
                if line.startswith("ExecStart="):
                    argv = shlex.split(line[len("ExecStart="):].replace("%i", "hotel_info"))
                    yield unit, argv


def dockerfile_command():
    with open(os.path.join(DEPLOY, "Dockerfile")) as f:
        text = f.read()
    entry = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M).group(1))
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))
    return entry + cmd


def kubernetes_documents():
    with open(os.path.join(DEPLOY, "kubernetes", "ctrip.yaml")) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def deployments():
    for doc in kubernetes_documents():
        if doc["kind"] == "Deployment":
            (container,) = doc["spec"]["template"]["spec"]["containers"]
            yield doc, ["microspider"] + container["args"]   # the image's ENTRYPOINT


@pytest.fixture(autouse=True)
def spider_imports_undone(monkeypatch):
    """Loading a spider file puts its folder on sys.path (examples/ctrip): undo it, so that a later
    test's bare name (``hotel``) is not read as that module."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if not name.startswith("microspider"):
            sys.modules.pop(name, None)


def spider_in_repo(image_path):
    """The Spider class a path inside the image names, loaded from this repository."""
    return load_spider(image_path.replace(IMAGE_CRAWL, IN_REPO, 1)
                       if image_path.startswith(IMAGE_CRAWL) else os.path.join(IN_REPO, image_path))


def test_systemd_units_run_commands_the_cli_accepts():
    found = dict((unit, argv) for unit, argv in systemd_commands())
    assert set(found) == {"microspider@.service", "microspider-web.service"}
    for argv in found.values():
        assert os.path.basename(argv[0]) == "microspider"
        accept(argv[1:])
    run = accept(found["microspider@.service"][1:])
    assert run["worker"] == "4" and run["forever"] is True


def test_dockerfile_command_is_accepted_and_names_a_spider_of_the_image():
    argv = dockerfile_command()
    assert argv[0] == "microspider"
    params = accept(argv[1:])
    assert spider_in_repo(params["spider"]).name == "ctrip_city"


def test_one_deployment_per_spider_scaled_by_its_work_queue():
    scaled = {d["spec"]["scaleTargetRef"]["name"]: d for d in kubernetes_documents()
              if d["kind"] == "ScaledObject"}
    names = []
    for deployment, argv in deployments():
        params = accept(argv[1:])
        spider = spider_in_repo(params["spider"])
        label = deployment["metadata"]["labels"]["microspider/spider"]
        assert spider.name == label
        trigger = scaled[deployment["metadata"]["name"]]["spec"]["triggers"][0]
        assert trigger["type"] == "redis"
        assert trigger["metadata"]["listName"] == keys.work(spider.name)
        assert scaled[deployment["metadata"]["name"]]["spec"]["minReplicaCount"] >= 1
        names.append(spider.name)
    assert names == ["ctrip_city", "ctrip_hotel", "ctrip_hotel_info"]


@pytest.mark.parametrize("argv", [["run", "x.py", "--worker", "zero"], ["run", "x.py", "--no-such"],
                                  ["nosuch", "x.py"], ["web", "--port", "99999"]])
def test_the_check_refuses_a_bad_command_line(argv):
    with pytest.raises((click.UsageError, ConfigError)):
        accept(argv)
