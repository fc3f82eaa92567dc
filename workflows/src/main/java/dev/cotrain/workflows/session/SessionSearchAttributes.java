package dev.cotrain.workflows.session;

import io.temporal.common.SearchAttributeKey;
import java.util.List;

/**
 * Typed search attributes every session workflow keeps current, so that the Temporal UI and CLI can
 * filter sessions: {@code temporal workflow list --query "CotrainStatus='RUNNING'"}. The worker
 * registers them when it starts ({@link #ALL}).
 */
public final class SessionSearchAttributes {

  /** The {@link SessionStatus} name. */
  public static final SearchAttributeKey<String> STATUS =
      SearchAttributeKey.forKeyword("CotrainStatus");

  /** {@code <type>-<size>}, e.g. {@code llama2-7B}. */
  public static final SearchAttributeKey<String> MODEL =
      SearchAttributeKey.forKeyword("CotrainModel");

  /** ddp | fsdp | diloco. */
  public static final SearchAttributeKey<String> STRATEGY =
      SearchAttributeKey.forKeyword("CotrainStrategy");

  public static final List<SearchAttributeKey<String>> ALL = List.of(STATUS, MODEL, STRATEGY);

  private SessionSearchAttributes() {}
}
