package io.hsmbridge.agent;

import io.vertx.core.json.JsonObject;

/** What an agent does with one request: blocking, runs on a token worker, never on an event loop. */
public interface RequestHandler {
  JsonObject execute(JsonObject body);

  /**
   * True for requests that wait on other HSMs (replicated mutations): they run on their own threads so
   * that a commit round trip never holds a token worker that crypto requests need.
   */
  default boolean waitsOnCluster(JsonObject body) {
    return false;
  }
}
