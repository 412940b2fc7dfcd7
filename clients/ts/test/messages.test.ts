/** Message helpers: text and tool calls read from an assistant message. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { MessageSchema, Role, messageText, messageToolCalls, textMessage, userMessage } from "../src/index.js";

test("text parts joined, tool calls in order, other parts skipped", () => {
  const message = create(MessageSchema, {
    role: Role.ASSISTANT,
    content: [
      { kind: { case: "text", value: "a" } },
      { kind: { case: "toolCall", value: { id: "c1", name: "get_weather", arguments: "{}" } } },
      { kind: { case: "text", value: "b" } },
      { kind: { case: "toolCall", value: { id: "c2", name: "get_time", arguments: "{}" } } },
    ],
  });
  assert.equal(messageText(message), "ab");
  assert.deepEqual(messageToolCalls(message).map((c) => c.id), ["c1", "c2"]);
  assert.equal(messageText(undefined), "");
  assert.deepEqual(messageToolCalls(undefined), []);
});

test("a user message has one text part", () => {
  assert.deepEqual(userMessage("hi"), textMessage(Role.USER, "hi"));
  assert.equal(messageText(create(MessageSchema, userMessage("hi"))), "hi");
});
