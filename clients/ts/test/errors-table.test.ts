/**
 * tests/contract/errors.yaml (generated from the protos' comments) replayed, as every client does:
 * each reason the API names, with its code, decodes to the same family in all four.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { parse } from "yaml";
import { ErrorInfoSchema } from "../src/gen/google/rpc/error_details_pb.js";
import {
  AuthenticationError,
  CancelledError,
  ConflictError,
  DeadlineExceededError,
  InternalError,
  InvalidRequestError,
  NotFoundError,
  PermissionDeniedError,
  PreconditionError,
  QuotaExceededError,
  StreamInterruptedError,
  TransportLimitError,
  UnavailableError,
  toSidecarError,
} from "../src/index.js";
import { REPO_ROOT } from "./sidecar-process.js";

const FAMILIES: Record<string, new (...args: never[]) => Error> = {
  invalid_request: InvalidRequestError,
  authentication: AuthenticationError,
  permission_denied: PermissionDeniedError,
  not_found: NotFoundError,
  failed_precondition: PreconditionError,
  quota_exceeded: QuotaExceededError,
  transport_limit: TransportLimitError,
  conflict: ConflictError,
  unavailable: UnavailableError,
  stream_interrupted: StreamInterruptedError,
  deadline_exceeded: DeadlineExceededError,
  cancelled: CancelledError,
  internal: InternalError,
};

/** connect's Code of a gRPC code name: INVALID_ARGUMENT is Code.InvalidArgument, CANCELLED Code.Canceled. */
function codeOf(name: string): Code {
  const camel = name === "CANCELLED" ? "Canceled" : name.toLowerCase().replace(/(^|_)([a-z])/g, (_, __, c: string) => c.toUpperCase());
  const code = (Code as unknown as Record<string, Code>)[camel];
  assert.ok(code !== undefined, name);
  return code;
}

test("every reason of the protos (tests/contract/errors.yaml) decodes to its family", () => {
  const rows = (parse(readFileSync(path.join(REPO_ROOT, "tests/contract/errors.yaml"), "utf8")) as {
    reasons: { reason: string; code: string; family: string }[];
  }).reasons;
  assert.ok(rows.length >= 40);
  for (const row of rows) {
    const err = new ConnectError("m", codeOf(row.code));
    if (row.reason) {
      err.details = [{ type: ErrorInfoSchema.typeName, value: toBinary(ErrorInfoSchema, create(ErrorInfoSchema, { reason: row.reason, domain: "orchestrator.sidecar" })) }];
    }
    const typed = toSidecarError(err);
    const family = FAMILIES[row.family];
    assert.ok(family, row.family);
    assert.equal(typed.constructor, family, `${row.code} ${JSON.stringify(row.reason)}: ${typed.constructor.name}, want ${family.name}`);
    assert.equal(typed.reason, row.reason);
  }
});
