package io.hsmbridge.bridge.cluster;

import java.util.logging.Logger;
import org.infinispan.notifications.Listener;
import org.infinispan.notifications.cachemanagerlistener.annotation.Merged;
import org.infinispan.notifications.cachemanagerlistener.annotation.ViewChanged;
import org.infinispan.notifications.cachemanagerlistener.event.ViewChangedEvent;

/**
 * Logs every change of the membership as one line, {@code cluster membership: N members [...]}, which
 * operators and the container tests read (Infinispan's own INFO lines are silenced by ClusterTransport).
 */
@Listener(sync = false)
public final class MembershipLog {
  /** The start of the line; followed by the member count. */
  public static final String PREFIX = "cluster membership: ";

  private static final Logger LOG = Logger.getLogger(MembershipLog.class.getName());

  @ViewChanged
  public void viewChanged(ViewChangedEvent e) {
    LOG.info(PREFIX + e.getNewMembers().size() + " members " + e.getNewMembers());
  }

  @Merged
  public void merged(ViewChangedEvent e) {
    LOG.info(PREFIX + e.getNewMembers().size() + " members " + e.getNewMembers() + " (split clusters merged)");
  }
}
