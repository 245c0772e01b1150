#!/usr/bin/python3
"""Fill an .xlsx the way a person would: LibreOffice headless, typing through the dispatcher.

Runs under the system Python (/usr/bin/python3), which has LibreOffice's ``uno``; the project's
venv does not, and must not import it. The UNO cell API (``setString``) ignores sheet protection,
so every value goes through ``.uno:GoToCell`` + ``.uno:EnterString`` like keyboard input:
protection is honoured, and LibreOffice recognises numbers and dates in the typed text exactly as
it does for a person (with the locale from $LO_FILL_LOCALE, default nb-NO, so 16.12.2020 is a date).

Usage: lo_fill.py SRC.xlsx DST.xlsx CELLS.json WORKDIR
CELLS.json maps "Sheet!C14" to the text to type. WORKDIR holds the private HOME and profile.
"""

import contextlib
import json
import os
import subprocess
import sys
import time

import uno  # type: ignore[import-not-found]
from com.sun.star.beans import PropertyValue  # type: ignore[import-not-found]
from com.sun.star.connection import NoConnectException  # type: ignore[import-not-found]


def props(**values):
    out = []
    for name, value in values.items():
        p = PropertyValue()
        p.Name, p.Value = name, value
        out.append(p)
    return tuple(out)


def connect(proc, pipe):
    local = uno.getComponentContext()
    resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
    deadline = time.monotonic() + 60
    while True:
        try:
            return resolver.resolve(f"uno:pipe,name={pipe};urp;StarOffice.ComponentContext")
        except NoConnectException:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"soffice did not answer (exit code {proc.poll()})") from None
            time.sleep(0.1)  # soffice needs ~1 s to open its pipe


def main(src, dst, cells_path, work):
    src, dst, work = (os.path.abspath(p) for p in (src, dst, work))
    with open(cells_path, encoding="utf-8") as fh:
        cells = json.load(fh)
    locale = os.environ.get("LO_FILL_LOCALE", "nb-NO")
    posix = locale.replace("-", "_") + ".UTF-8"
    pipe = f"lo_fill_{os.getpid()}"
    proc = subprocess.Popen(
        [
            "soffice",
            "--headless",
            "--invisible",
            "--nologo",
            "--norestore",
            "--nodefault",
            "--nolockcheck",
            f"-env:UserInstallation=file://{work}/profile",
            f"--accept=pipe,name={pipe};urp;StarOffice.ComponentContext",
        ],
        env=dict(os.environ, HOME=work, LANG=posix, LC_ALL=posix),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        ctx = connect(proc, pipe)
        smgr = ctx.ServiceManager
        desktop = smgr.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
        doc = desktop.loadComponentFromURL(uno.systemPathToFileUrl(src), "_blank", 0, props(Hidden=True))
        controller = doc.getCurrentController()
        frame = controller.getFrame()
        helper = smgr.createInstanceWithContext("com.sun.star.frame.DispatchHelper", ctx)
        for ref, text in cells.items():
            sheet, cell = ref.rsplit("!", 1)
            controller.setActiveSheet(doc.Sheets.getByName(sheet.strip("'")))
            helper.executeDispatch(frame, ".uno:GoToCell", "", 0, props(ToPoint=cell))
            helper.executeDispatch(frame, ".uno:EnterString", "", 0, props(StringName=text))
        doc.storeToURL(
            uno.systemPathToFileUrl(dst), props(FilterName="Calc MS Excel 2007 XML", Overwrite=True)
        )
        # the file is stored; the bridge dies with soffice, which under load may already be on its
        # way out while the document closes: a DisposedException from here on is normal
        with contextlib.suppress(Exception):
            doc.close(True)
        with contextlib.suppress(Exception):
            desktop.terminate()
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


if __name__ == "__main__":
    if len(sys.argv) != 5:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
