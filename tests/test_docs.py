"""The documentation site: built strictly (broken links fail), complete, and the README short."""
import glob
import importlib.util
import os
import re
import shutil
import subprocess
import sys

import click
import pytest

from microspider.cli import cli
from microspider.config import OPTIONS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(REPO, "docs")
README_LIMIT = 15 * 1024


def reference_module():
    spec = importlib.util.spec_from_file_location("docs_reference",
                                                  os.path.join(REPO, "scripts", "docs_reference.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def written_docs():
    """The Markdown written by hand, every page."""
    return "\n".join(read(p) for p in sorted(glob.glob(os.path.join(DOCS, "**", "*.md"), recursive=True)))


def build(config_dir, site_dir):
    """`mkdocs build --strict` of the mkdocs.yml in `config_dir` (not -q: it would hide the warnings
    that strict mode counts)."""
    pythonpath = os.pathsep.join([REPO] + sys.path)   # the hook imports microspider from the repository
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site_dir)],
                          cwd=config_dir, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=pythonpath, NO_MKDOCS_2_WARNING="1"))


def test_every_option_and_command_is_written_about():
    text = written_docs()
    missing = [o.flag for o in OPTIONS if o.flag not in text]
    assert not missing, "options no page explains: %s" % missing
    commands = [name for name, command in cli.commands.items() if not command.hidden]
    unheaded = [n for n in commands if not re.search(r"^#+ .*\b%s\b" % re.escape(n), text, re.M)]
    assert not unheaded, "commands without a section: %s" % unheaded


def test_generated_reference_lists_every_command_option_and_run_option():
    reference = reference_module()
    page = reference.on_page_markdown(read(os.path.join(DOCS, "commands.md")), None, None, None)
    assert reference.COMMANDS_MARKER not in page and reference.OPTIONS_MARKER not in page
    root = click.Context(cli, info_name="microspider")
    for name, command in reference._commands(cli, root):
        assert "### microspider %s\n" % name in page
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert "`%s" % param.opts[0] in page, (name, param.opts)
    for opt in OPTIONS:
        assert "| `%s`" % opt.flag in page, opt.flag
    assert "### microspider proxy check" in page and "### microspider try" in page


def test_site_builds_in_strict_mode(tmp_path):
    assert importlib.util.find_spec("mkdocs"), "docs requirements missing: bash scripts/setup.sh installs them"
    result = build(REPO, tmp_path / "site")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    api = (tmp_path / "site" / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    for documented in ("microspider.Spider", "microspider.Seed", "get_failure", "BadSeed", "soup"):
        assert documented in api
    commands = (tmp_path / "site" / "commands" / "index.html").read_text(encoding="utf-8")
    assert "--parse-timeout" in commands and "microspider proxy add" in commands
    deploying = (tmp_path / "site" / "deploying" / "index.html").read_text(encoding="utf-8")
    assert "ScaledObject" in deploying and "microspider:{ctrip_hotel_info}:work" in deploying
    assert (tmp_path / "site" / "zh" / "concepts" / "index.html").exists()


def test_a_broken_link_fails_the_build(tmp_path):
    copy = tmp_path / "repo"
    for folder in ("docs", "scripts", "deploy"):
        shutil.copytree(os.path.join(REPO, folder), copy / folder)
    shutil.copy(os.path.join(REPO, "mkdocs.yml"), copy / "mkdocs.yml")
    page = copy / "docs" / "concepts.md"
    page.write_text(page.read_text(encoding="utf-8") + "\nSee [nowhere](no-such-page.md).\n",
                    encoding="utf-8")
    result = build(copy, tmp_path / "site")
    assert result.returncode != 0
    assert "no-such-page.md" in result.stdout + result.stderr


def test_readme_is_short_and_starts_with_the_two_commands():
    text = read(os.path.join(REPO, "README.md"))
    assert len(text.encode("utf-8")) <= README_LIMIT
    first_block = text.split("```")[1]
    assert "bash scripts/demo.sh" in first_block and "bash scripts/test.sh" in first_block
    assert "中文快速上手" in text and "microspider try" in text
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if "://" not in target:
            assert os.path.exists(os.path.join(REPO, target)), "README links to a missing file: " + target


@pytest.mark.parametrize("page", ["getting-started.md", "concepts.md"])
def test_chinese_pages_exist_for_getting_started_and_concepts(page):
    text = read(os.path.join(DOCS, "zh", page))
    assert len(re.findall(r"[\u4e00-\u9fff]", text)) > 300   # written in Chinese, not a stub
