package dev.cotrain.api.live;

import dev.cotrain.api.auth.TokenRepository;
import dev.cotrain.api.auth.WebSocketTokenInterceptor;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.context.annotation.Configuration;
import org.springframework.web.socket.config.annotation.EnableWebSocket;
import org.springframework.web.socket.config.annotation.WebSocketConfigurer;
import org.springframework.web.socket.config.annotation.WebSocketHandlerRegistry;

@Configuration(proxyBeanMethods = false)
@EnableWebSocket
class WebSocketConfig implements WebSocketConfigurer {

  private final SessionSocketHandler handler;
  private final SessionListSocketHandler listHandler;
  private final TokenRepository tokens;
  private final String[] origins;

  /**
   * {@code origins}: the frontends' origins ({@code cotrain.frontend.origins}); the API's own
   * origin (the built-in dashboard) and clients that send no Origin are always allowed.
   */
  WebSocketConfig(
      SessionSocketHandler handler,
      SessionListSocketHandler listHandler,
      TokenRepository tokens,
      @Value("${cotrain.frontend.origins:}") String[] origins) {
    this.handler = handler;
    this.listHandler = listHandler;
    this.tokens = tokens;
    this.origins = origins;
  }

  @Override
  public void registerWebSocketHandlers(WebSocketHandlerRegistry registry) {
    registry
        .addHandler(handler, SessionSocketHandler.PATH_PREFIX + "*")
        .addInterceptors(new WebSocketTokenInterceptor(tokens))
        .setAllowedOrigins(origins);
    registry
        .addHandler(listHandler, SessionListSocketHandler.PATH)
        .addInterceptors(new WebSocketTokenInterceptor(tokens))
        .setAllowedOrigins(origins);
  }
}
