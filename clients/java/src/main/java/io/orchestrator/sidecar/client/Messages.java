package io.orchestrator.sidecar.client;

import io.orchestrator.sidecar.v1.ContentPart;
import io.orchestrator.sidecar.v1.EmbedRequest;
import io.orchestrator.sidecar.v1.GenerationInput;
import io.orchestrator.sidecar.v1.Message;
import io.orchestrator.sidecar.v1.Role;
import io.orchestrator.sidecar.v1.ToolCall;
import java.util.List;
import java.util.stream.Collectors;

/** Helpers to build requests and read answers. */
public final class Messages {
  private Messages() {}

  /** A message with one text part. */
  public static Message text(Role role, String text) {
    return Message.newBuilder().setRole(role).addContent(ContentPart.newBuilder().setText(text)).build();
  }

  /** A user message with one text part. */
  public static Message user(String text) {
    return text(Role.ROLE_USER, text);
  }

  /** A GenerationInput of one user message on the default route. */
  public static GenerationInput ask(String text) {
    return GenerationInput.newBuilder().addMessages(user(text)).build();
  }

  /** An EmbedRequest for texts, charged to a tenant's user, on the default embedding route. */
  public static EmbedRequest texts(String tenantId, String userId, String... texts) {
    return EmbedRequest.newBuilder().setTenantId(tenantId).setUserId(userId).addAllTexts(List.of(texts)).build();
  }

  /** The text parts of a message, joined. */
  public static String textOf(Message message) {
    return message.getContentList().stream()
        .filter(ContentPart::hasText)
        .map(ContentPart::getText)
        .collect(Collectors.joining());
  }

  /** The tool calls the model asked for in a message, in order. */
  public static List<ToolCall> toolCallsOf(Message message) {
    return message.getContentList().stream().filter(ContentPart::hasToolCall).map(ContentPart::getToolCall).toList();
  }
}
