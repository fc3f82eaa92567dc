package dev.cotrain.api.session;

import jakarta.validation.constraints.Max;
import jakarta.validation.constraints.Min;
import jakarta.validation.constraints.NotNull;

/** The body of {@code PUT /api/sessions/{id}/priority}. */
record PriorityRequest(
    @NotNull(message = "is required")
        @Min(value = -1000, message = "must be between -1000 and 1000")
        @Max(value = 1000, message = "must be between -1000 and 1000")
        Integer priority) {}
