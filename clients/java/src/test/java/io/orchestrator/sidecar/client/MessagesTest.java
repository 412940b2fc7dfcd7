package io.orchestrator.sidecar.client;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.orchestrator.sidecar.v1.ContentPart;
import io.orchestrator.sidecar.v1.Message;
import io.orchestrator.sidecar.v1.Role;
import io.orchestrator.sidecar.v1.ToolCall;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Message helpers: text and tool calls read from an assistant message. */
class MessagesTest {
  @Test
  void textJoinedToolCallsInOrder() {
    Message m = Message.newBuilder().setRole(Role.ROLE_ASSISTANT)
        .addContent(ContentPart.newBuilder().setText("a"))
        .addContent(ContentPart.newBuilder().setToolCall(ToolCall.newBuilder().setId("c1").setName("get_weather")))
        .addContent(ContentPart.newBuilder().setText("b"))
        .addContent(ContentPart.newBuilder().setToolCall(ToolCall.newBuilder().setId("c2").setName("get_time")))
        .build();
    assertEquals("ab", Messages.textOf(m));
    assertEquals(List.of("c1", "c2"), Messages.toolCallsOf(m).stream().map(ToolCall::getId).toList());
  }

  @Test
  void askIsOneUserMessage() {
    assertEquals(Messages.user("hi"), Messages.ask("hi").getMessages(0));
    assertEquals(Role.ROLE_USER, Messages.ask("hi").getMessages(0).getRole());
    assertEquals("hi", Messages.textOf(Messages.ask("hi").getMessages(0)));
  }
}
