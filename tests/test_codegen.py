"""`reactive_codegen`: the generated declarations type-check real TypeScript with `tsc`."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tests.conftest import JS_DIR

pytestmark = pytest.mark.timeout(120)

USES = """
import { api, internal } from "./api";
import type { Doc, Id } from "./api";
import type { FunctionArgs, FunctionReturnType } from "convex/server";

const add: FunctionArgs<typeof api.testapp.add_note> = { body: "hello" };
const typed: FunctionArgs<typeof api.testapp.typed> = { point: { x: 1, y: 2 }, tags: ["a"] };
const hello: FunctionArgs<typeof api.testapp.rooms.hello> = {};
const id: FunctionReturnType<typeof api.testapp.add_note> = "12";
const secret: FunctionReturnType<typeof internal.testapp.secret> = "internal";
const note: Doc<"testapp.Note"> = {
  _id: "1" as Id<"testapp.Note">, body: "x", author: null, created_at: 1,
};
// @ts-expect-error body must be a string
const wrong: FunctionArgs<typeof api.testapp.add_note> = { body: 5 };
type TypedArgs = FunctionArgs<typeof api.testapp.typed>;
// @ts-expect-error mode is "a" | "b"
const badMode: TypedArgs = { point: { x: 1, y: 2 }, tags: [], mode: "c" };
// @ts-expect-error internal functions are not on `api`
api.testapp.secret;
export { add, typed, hello, id, secret, note, wrong, badMode };
"""


@pytest.fixture
def out_dir(node: str) -> Iterator[Path]:
    path = JS_DIR / f".codegen-{uuid.uuid4().hex[:8]}"
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_codegen_output_type_checks_with_tsc(out_dir: Path) -> None:
    # Given the generated declarations
    call_command("reactive_codegen", "--out", str(out_dir), stdout=StringIO())
    declarations = (out_dir / "api.d.ts").read_text()
    assert '"add_note": FunctionReference<"mutation", "public", { "body": string }, string>' in (
        declarations
    )
    # When a TypeScript file uses them correctly and incorrectly (marked @ts-expect-error)
    (out_dir / "uses.ts").write_text(USES)
    tsc = JS_DIR / "node_modules" / ".bin" / "tsc"
    done = subprocess.run(
        [str(tsc), "--noEmit", "--strict", "--target", "es2022", "--module", "esnext",
         "--moduleResolution", "bundler", "--skipLibCheck", "uses.ts"],
        cwd=out_dir, capture_output=True, text=True, timeout=100,
    )
    # Then tsc accepts the right uses and the wrong ones are caught
    assert done.returncode == 0, done.stdout + done.stderr


def test_codegen_refuses_a_file_as_out_dir(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("")
    with pytest.raises(CommandError, match="is not a directory"):
        call_command("reactive_codegen", "--out", str(target))
