package dev.cotrain.api.session;

import java.util.UUID;

/**
 * The answer to pause, resume and cancel: the state the session is now in, or heading to (PAUSING,
 * QUEUED, CANCELLING); its events tell when it got there.
 */
record ControlResponse(UUID id, String status) {}
