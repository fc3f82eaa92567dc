package dev.cotrain.api.live;

import org.springframework.context.annotation.Configuration;
import org.springframework.web.socket.config.annotation.EnableWebSocket;
import org.springframework.web.socket.config.annotation.WebSocketConfigurer;
import org.springframework.web.socket.config.annotation.WebSocketHandlerRegistry;

@Configuration(proxyBeanMethods = false)
@EnableWebSocket
class WebSocketConfig implements WebSocketConfigurer {

  private final SessionSocketHandler handler;

  WebSocketConfig(SessionSocketHandler handler) {
    this.handler = handler;
  }

  @Override
  public void registerWebSocketHandlers(WebSocketHandlerRegistry registry) {
    // Every origin for now: the API has no authentication yet (see docs/websocket.md).
    registry.addHandler(handler, SessionSocketHandler.PATH_PREFIX + "*").setAllowedOrigins("*");
  }
}
