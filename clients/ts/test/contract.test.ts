/**
 * The shared client contract suite (tests/contract/scenarios.yaml) replayed in file order through
 * SidecarClient against a real sidecar process. Every scenario id must run; an unknown rpc fails.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { fromJson, toJson, type DescMessage, type JsonValue, type MessageShape } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { parse } from "yaml";
import {
  EmbedRequestSchema,
  EmbedResponseSchema,
  AcceptEscalationRequestSchema,
  AcceptEscalationResponseSchema,
  AnswerEscalationRequestSchema,
  AnswerEscalationResponseSchema,
  DeclineEscalationRequestSchema,
  DeclineEscalationResponseSchema,
  GetAnswerReportRequestSchema,
  GetAnswerReportResponseSchema,
  ListEscalationsRequestSchema,
  ListEscalationsResponseSchema,
  FeedbackRequestSchema,
  FeedbackResponseSchema,
  GenerateResponseSchema,
  GetExperimentReportRequestSchema,
  GetExperimentReportResponseSchema,
  GenerateRequestSchema,
  GetQuotaRequestSchema,
  GetQuotaResponseSchema,
  ListModelsRequestSchema,
  ListModelsResponseSchema,
  SidecarClient,
  StreamGenerateRequestSchema,
  SwitchRequestSchema,
  SwitchResponseSchema,
  messageText,
  toSidecarError,
} from "../src/index.js";
import { mismatches, type Outcome, type Scenario, type ScenarioFile } from "./scenarios.js";
import { REPO_ROOT, startSidecar, type RunningSidecar } from "./sidecar-process.js";

const SCENARIOS = process.env["CONTRACT_SCENARIOS"] ?? path.join(REPO_ROOT, "tests/contract/scenarios.yaml");
const CONFIG = process.env["CONTRACT_SIDECAR_CONFIG"] ?? path.join(REPO_ROOT, "tests/contract/sidecar.yaml");
const file = parse(readFileSync(SCENARIOS, "utf8")) as ScenarioFile;

function request<Desc extends DescMessage>(schema: Desc, scenario: Scenario): MessageShape<Desc> {
  return fromJson(schema, (scenario.request ?? {}) as JsonValue);
}

function json<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): unknown {
  return toJson(schema, message, { alwaysEmitImplicit: true });
}

async function unary(client: SidecarClient, scenario: Scenario): Promise<Outcome> {
  const options = { timeoutMs: scenario.deadline_ms };
  switch (scenario.rpc) {
    case "Generate": {
      const input = request(GenerateRequestSchema, scenario).input ?? {};
      const response = await client.generate(input, options);
      return { response: json(GenerateResponseSchema, response), text: messageText(response.message), deltas: 0, cancelledByClient: false };
    }
    case "Switch":
      return { response: json(SwitchResponseSchema, await client.switch(request(SwitchRequestSchema, scenario), options)), deltas: 0, cancelledByClient: false };
    case "GetQuota":
      return { response: json(GetQuotaResponseSchema, await client.getQuota(request(GetQuotaRequestSchema, scenario), options)), deltas: 0, cancelledByClient: false };
    case "ListModels":
      return { response: json(ListModelsResponseSchema, await client.listModels(request(ListModelsRequestSchema, scenario), options)), deltas: 0, cancelledByClient: false };
    case "Embed":
      return { response: json(EmbedResponseSchema, await client.embed(request(EmbedRequestSchema, scenario), options)), deltas: 0, cancelledByClient: false };
    case "Feedback":
      return { response: json(FeedbackResponseSchema, await client.feedback(request(FeedbackRequestSchema, scenario), options)), deltas: 0, cancelledByClient: false };
    case "GetExperimentReport": {
      const r = request(GetExperimentReportRequestSchema, scenario);
      const query = { tenantId: r.tenantId, experiment: r.experiment, start: timestampDate(r.startTime!), end: timestampDate(r.endTime!) };
      return { response: json(GetExperimentReportResponseSchema, await client.getExperimentReport(query, options)), deltas: 0, cancelledByClient: false };
    }
    default:
      return escalation(client, scenario);
  }
}

/** The EscalationService scenarios, through the client's escalation methods. */
async function escalation(client: SidecarClient, scenario: Scenario): Promise<Outcome> {
  const options = { timeoutMs: scenario.deadline_ms };
  const ok = (response: unknown): Outcome => ({ response, deltas: 0, cancelledByClient: false });
  switch (scenario.rpc) {
    case "AcceptEscalation": {
      const r = request(AcceptEscalationRequestSchema, scenario);
      return ok(json(AcceptEscalationResponseSchema, await client.acceptEscalation(r.tenantId, r.userId, r.escalationId, options)));
    }
    case "ListEscalations":
      return ok(json(ListEscalationsResponseSchema, await client.listEscalations(request(ListEscalationsRequestSchema, scenario), options)));
    case "AnswerEscalation":
      return ok(json(AnswerEscalationResponseSchema, await client.answerEscalation(request(AnswerEscalationRequestSchema, scenario), options)));
    case "DeclineEscalation":
      return ok(json(DeclineEscalationResponseSchema, await client.declineEscalation(request(DeclineEscalationRequestSchema, scenario), options)));
    case "GetAnswerReport": {
      const r = request(GetAnswerReportRequestSchema, scenario);
      return ok(json(GetAnswerReportResponseSchema, await client.getAnswerReport(r.tenantId, r.agentId, options)));
    }
    default:
      throw new Error(`scenario ${scenario.id}: unknown rpc ${JSON.stringify(scenario.rpc)}`);
  }
}

async function stream(client: SidecarClient, scenario: Scenario): Promise<Outcome> {
  const controller = new AbortController();
  const input = request(StreamGenerateRequestSchema, scenario).input ?? {};
  const events: string[] = [];
  let text = "";
  let deltas = 0;
  let response: unknown;
  try {
    for await (const message of client.stream(input, { timeoutMs: scenario.deadline_ms, signal: controller.signal })) {
      if (message.event.case === "delta") {
        events.push("delta");
        deltas++;
        text += message.event.value.kind.case === "text" ? message.event.value.kind.value : "";
        if (deltas === scenario.cancel_after_deltas) controller.abort();
      } else if (message.event.case === "result") {
        events.push("final");
        response = json(GenerateResponseSchema, message.event.value);
      } else {
        events.push("unknown");
      }
    }
  } catch (err) {
    return { error: err, events, text, deltas, cancelledByClient: controller.signal.aborted };
  }
  return { response, events, text, deltas, cancelledByClient: controller.signal.aborted };
}

describe(`contract scenarios (${path.relative(REPO_ROOT, SCENARIOS)})`, () => {
  let sidecar: RunningSidecar;
  let authed: SidecarClient;
  let anonymous: SidecarClient;
  const ran = new Set<string>();

  before(async () => {
    sidecar = await startSidecar(CONFIG, file.token);
    authed = new SidecarClient({ address: sidecar.address, token: file.token });
    anonymous = new SidecarClient({ address: sidecar.address, token: null });
  });

  after(async () => {
    authed?.close();
    anonymous?.close();
    await sidecar?.stop();
  });

  for (const scenario of file.scenarios) {
    test(scenario.id, async () => {
      ran.add(scenario.id);
      const client = scenario.auth === false ? anonymous : authed;
      let outcome: Outcome;
      if (scenario.rpc === "StreamGenerate") {
        outcome = await stream(client, scenario);
      } else {
        try {
          outcome = await unary(client, scenario);
        } catch (err) {
          if (err instanceof Error && err.message.includes("unknown rpc")) throw err;
          outcome = { error: toSidecarError(err), deltas: 0, cancelledByClient: false };
        }
      }
      assert.deepEqual(mismatches(scenario.expect, outcome), [], `scenario ${scenario.id}`);
    });
  }

  test("every scenario id ran", () => {
    const ids = file.scenarios.map((s) => s.id);
    assert.equal(new Set(ids).size, ids.length, "scenario ids are unique");
    assert.deepEqual(ids.filter((id) => !ran.has(id)), []);
  });

  test("the same calls work over the Unix socket", async () => {
    const client = new SidecarClient({ address: sidecar.unixAddress, token: file.token });
    try {
      const models = await client.listModels();
      assert.ok(models.routes.length > 0);
    } finally {
      client.close();
    }
  });
});
