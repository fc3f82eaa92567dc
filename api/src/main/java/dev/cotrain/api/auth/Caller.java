package dev.cotrain.api.auth;

import java.util.UUID;

/**
 * Who sends a request: the token's owner, and whether it is an admin token. Set by {@link
 * BearerTokenFilter} as the request attribute {@link #ATTRIBUTE}; controllers take it with
 * {@code @RequestAttribute(Caller.ATTRIBUTE)}.
 */
public record Caller(UUID tokenId, String owner, boolean admin) {

  public static final String ATTRIBUTE = "cotrain.caller";

  /** Whether this caller may see and control what {@code owner} owns. */
  public boolean canSee(String owner) {
    return admin || this.owner.equals(owner);
  }

  /** The owner to filter lists by: null for an admin, who sees everything. */
  public String ownerFilter() {
    return admin ? null : owner;
  }
}
