"""The generated parts of the documentation site: every run option and every command, from the code.

An MkDocs hook (``hooks:`` in mkdocs.yml): a page holding the marker
``<!-- microspider:options -->`` gets the table of ``microspider.config.OPTIONS``
in its place, and ``<!-- microspider:commands -->`` the usage and options of
every command of the click group.  So the reference cannot fall behind the
code; tests/test_docs.py checks that every option and command is there.
"""
import click

OPTIONS_MARKER = "<!-- microspider:options -->"
COMMANDS_MARKER = "<!-- microspider:commands -->"


def options_table():
    """Markdown table of every run option: flag, config key, default, meaning."""
    from microspider.config import OPTIONS

    rows = ["| flag | `microspider.cfg` key | default | meaning |", "|---|---|---|---|"]
    for opt in OPTIONS:
        flag = "`%s`" % opt.flag + (", `%s`" % opt.short if opt.short else "")
        default = "-" if opt.default is None else "`%s`" % (opt.default,)
        rows.append("| %s | `%s` | %s | %s |" % (flag, opt.name.replace("_", "-"), default,
                                                 _cell(opt.help)))
    return "\n".join(rows) + "\n"


def commands_reference():
    """One section per command (subcommands included): its usage, summary and options."""
    from microspider.cli import cli

    root = click.Context(cli, info_name="microspider")
    return "\n".join(_command_section(name, command, root)
                     for name, command in _commands(cli, root))


def _commands(group, ctx, prefix=""):
    for name in sorted(group.list_commands(ctx)):
        command = group.get_command(ctx, name)
        if command.hidden:
            continue
        if isinstance(command, click.Group):
            yield from _commands(command, click.Context(command, info_name=name, parent=ctx),
                                 prefix + name + " ")
        else:
            yield prefix + name, command


def _command_section(name, command, root):
    ctx = click.Context(command, info_name=name, parent=root)
    usage = " ".join(command.collect_usage_pieces(ctx))
    lines = ["### microspider %s" % name, "", "```text", "microspider %s %s" % (name, usage), "```",
             "", _cell(command.get_short_help_str(limit=200)), ""]
    options = [p for p in command.get_params(ctx) if isinstance(p, click.Option)]
    if options:
        lines += ["| option | meaning |", "|---|---|"]
        for param in options:
            record = param.get_help_record(ctx)
            if record:
                lines.append("| `%s` | %s |" % (record[0], _cell(record[1])))
    return "\n".join(lines) + "\n"


def _cell(text):
    """`text` on one line, safe in a Markdown table cell (no column break, no reference link)."""
    text = " ".join(text.split())
    for char in "|[]":
        text = text.replace(char, "\\" + char)
    return text


def on_page_markdown(markdown, page, config, files):
    """MkDocs hook: fill the markers of a page."""
    if OPTIONS_MARKER in markdown:
        markdown = markdown.replace(OPTIONS_MARKER, options_table())
    if COMMANDS_MARKER in markdown:
        markdown = markdown.replace(COMMANDS_MARKER, commands_reference())
    return markdown
