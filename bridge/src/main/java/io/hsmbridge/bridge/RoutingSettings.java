package io.hsmbridge.bridge;

import io.hsmbridge.agent.AgentConfig;
import java.time.Duration;
import java.util.Properties;

/**
 * How a cluster bridge routes, retries and acknowledges ({@code cluster.*} keys of a bridge node).
 *
 * @param durability a mutation is acknowledged when applied on min(durability, HSMs in the cluster) HSMs
 * @param deadAfter an HSM without a heartbeat for this long is unhealthy and gets no traffic
 * @param antiEntropy how often HSMs' object digests are compared (zero = only on request)
 * @param durabilityTimeout how long an acknowledged-by-the-log mutation may wait for enough HSMs to apply it
 * @param attempts how many HSMs one request may be tried on (idempotent requests only)
 * @param requestBudget the total time a request may spend across its attempts
 * @param sessionIdle a login session ends after this long without a request ({@code auth.sessionIdleMinutes})
 * @param sessionMax a login session ends this long after the login at the latest ({@code auth.sessionMaxMinutes})
 * @param hedgeAfter a request that may be sent twice and has no answer after this long also goes to another
 *     HSM, the first answer wins ({@code cluster.hedgeAfterMs}; zero = never)
 */
public record RoutingSettings(int durability, Duration deadAfter, Duration antiEntropy, Duration durabilityTimeout,
    int attempts, Duration requestBudget, Duration sessionIdle, Duration sessionMax, Duration hedgeAfter) {

  public static RoutingSettings from(Properties p) {
    int durability = AgentConfig.integer(p, "cluster.durability", 2);
    if (durability < 1 || durability > 16) {
      throw AgentConfig.invalid("cluster.durability must be 1..16");
    }
    int deadMs = AgentConfig.integer(p, "cluster.deadAfterMs", 2000);
    int antiEntropyS = AgentConfig.integer(p, "cluster.antiEntropySeconds", 30);
    int durabilityMs = AgentConfig.integer(p, "cluster.durabilityTimeoutMs", 10_000);
    int attempts = AgentConfig.integer(p, "cluster.retryAttempts", 3);
    int budgetMs = AgentConfig.integer(p, "cluster.requestBudgetMs", 25_000);
    int hedgeMs = AgentConfig.integer(p, "cluster.hedgeAfterMs", 1_500);
    if (deadMs < 200 || antiEntropyS < 0 || durabilityMs < 100 || attempts < 1 || attempts > 10 || budgetMs < 1000
        || (hedgeMs != 0 && hedgeMs < 100)) {
      throw AgentConfig.invalid("cluster.deadAfterMs >= 200, cluster.antiEntropySeconds >= 0, "
          + "cluster.durabilityTimeoutMs >= 100, cluster.retryAttempts 1..10, cluster.requestBudgetMs >= 1000, "
          + "cluster.hedgeAfterMs 0 (never) or >= 100");
    }
    int idleMin = AgentConfig.integer(p, "auth.sessionIdleMinutes", 15);
    int maxMin = AgentConfig.integer(p, "auth.sessionMaxMinutes", 8 * 60);
    if (idleMin < 1 || maxMin < idleMin || maxMin > 7 * 24 * 60) {
      throw AgentConfig.invalid("auth.sessionIdleMinutes >= 1 and <= auth.sessionMaxMinutes <= 10080 (7 days)");
    }
    // In seconds for tests and short-lived automation (it overrides the minutes); not below 5 s: front doors
    // tell each other of a session's use every second (Sessions.REPORT_MS).
    int idleS = AgentConfig.integer(p, "auth.sessionIdleSeconds", idleMin * 60);
    if (idleS < 5 || idleS > maxMin * 60) {
      throw AgentConfig.invalid("auth.sessionIdleSeconds >= 5 and <= auth.sessionMaxMinutes x 60");
    }
    return new RoutingSettings(durability, Duration.ofMillis(deadMs), Duration.ofSeconds(antiEntropyS),
        Duration.ofMillis(durabilityMs), attempts, Duration.ofMillis(budgetMs), Duration.ofSeconds(idleS),
        Duration.ofMinutes(maxMin), Duration.ofMillis(hedgeMs));
  }
}
