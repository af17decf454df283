"""The Redis transport, with one kombu defect worked around.

When a worker loses its Redis connection while a task is running (acks_late: its message is still
unacknowledged), Celery collects the broken connection (kombu sets the transport's `client` to
None) and then closes it; closing the channel tries to put the unacknowledged message back into
the queue through that connection, kombu's Redis transport dereferences the missing client
(`AttributeError: 'NoneType' object has no attribute 'hostname'` in `_connparams`), and the
worker exits with "Unrecoverable error" (celery 5.7 / kombu 5.7; a 21-second Redis outage was
enough). The same happens when the running task later acknowledges its message on the dead
channel.

Nothing is lost by not talking to a Redis that is gone: the message stays in Redis's `unacked`
hash and comes back after the visibility timeout, and Kodo's recovery task (kodo.jobs.recover_jobs)
resumes the job from its database row long before that. So this QoS skips the restore and the
acknowledgement when its transport is already closed, with a warning, and the worker goes on to
reconnect. Selected by CELERY_BROKER_TRANSPORT in kodo/settings.py for redis:// brokers.
"""

import logging

from kombu.transport import redis

log = logging.getLogger(__name__)


class QoS(redis.QoS):
    def _transport_closed(self) -> bool:
        transport = self.channel.connection
        return transport is None or transport.client is None

    def restore_unacked(self, client=None):
        if self._transport_closed():
            log.warning(
                "The broker connection is gone with %d unacknowledged message(s): Redis "
                "gives them back after the visibility timeout, and their jobs resume "
                "sooner through Kodo's recovery.",
                len(self._delivered),
            )
            self._delivered.clear()
            return
        return super().restore_unacked(client)

    def ack(self, delivery_tag):
        if self._transport_closed():
            log.warning(
                "Cannot acknowledge message %s: the connection it came on is gone; "
                "a second delivery of a finished job does nothing.",
                delivery_tag,
            )
            self._delivered.pop(delivery_tag, None)
            return
        return super().ack(delivery_tag)

    def reject(self, delivery_tag, requeue=False):
        if self._transport_closed():
            log.warning(
                "Cannot reject message %s: the connection it came on is gone.", delivery_tag
            )
            self._delivered.pop(delivery_tag, None)
            return
        return super().reject(delivery_tag, requeue=requeue)


class Channel(redis.Channel):
    QoS = QoS


class Transport(redis.Transport):
    Channel = Channel
