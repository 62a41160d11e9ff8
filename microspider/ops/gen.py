"""``gen NAME``: a new spider file from microspider/templates/, and a microspider.cfg beside it."""
import json
import os
import re
from importlib import resources
from string import Template

from ..config import CONFIG_FILE, OPTIONS
from ..errors import ConfigError
from ..seed import Seed

GEN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# example values for the options whose default is "not set"
EXAMPLES = {"redis": "127.0.0.1:6379", "mongo_uri": "mongodb://127.0.0.1:27017",
            "http_proxy": "proxies.txt", "rate": "10", "rate_per_host": "2", "recrawl": "7d",
            "every": "1d", "render_pages": "16", "render_tabs": "16"}


def gen(name, folder=".", start_url="http://example.com/"):
    """Write FOLDER/NAME.py (never over an existing file) and a microspider.cfg if none.

    Returns the paths written.  ConfigError for a bad name or URL, or when
    NAME.py exists.
    """
    name = name[:-3] if name.endswith(".py") else name
    if not GEN_NAME.match(name):
        raise ConfigError("bad spider name %r: use letters, digits and _, not starting with a digit"
                          % name)
    Seed(start_url)  # ValueError for a URL that is not http(s)
    path = os.path.join(folder, name + ".py")
    text = _render("spider.py.tmpl", name=name, class_name=class_name(name),
                   start_url=json.dumps(start_url, ensure_ascii=False))
    try:
        with open(path, "x", encoding="utf-8") as f:   # "x": an existing file is never touched
            f.write(text)
    except FileExistsError:
        raise ConfigError("%s exists; gen never overwrites a file (pick another name or remove it)"
                          % path) from None
    written = [path]
    cfg = os.path.join(folder, CONFIG_FILE)
    try:
        with open(cfg, "x", encoding="utf-8") as f:
            f.write(_render("microspider.cfg.tmpl", name=name, options=config_lines()))
        written.append(cfg)
    except FileExistsError:
        pass
    return written


def class_name(name):
    """``hotel_info`` -> ``HotelInfoSpider``."""
    camel = "".join(part[:1].upper() + part[1:] for part in name.split("_")) or "My"
    return camel if camel.endswith("Spider") else camel + "Spider"


def config_lines():
    """Every option as a commented ``key = default`` line under its help."""
    blocks = []
    for opt in OPTIONS:
        value = EXAMPLES.get(opt.name, opt.default)
        if isinstance(value, bool):
            value = str(value).lower()
        blocks.append("# %s\n# %s = %s" % (opt.help, opt.flag[2:], value))
    return "\n\n".join(blocks)


def _render(template, **values):
    text = (resources.files("microspider") / "templates" / template).read_text(encoding="utf-8")
    return Template(text).substitute(values)
