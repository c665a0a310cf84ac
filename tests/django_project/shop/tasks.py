try:
    from django.tasks import task  # Django 6
except ImportError:
    from django_tasks import task  # Django 5.2 with the django-tasks backport

from shop.models import Order


class PaymentDeclined(Exception):
    pass


@task
def send_receipt(order_id):
    order = Order.objects.get(pk=order_id)
    order.receipt_sent = True
    order.save(update_fields=["receipt_sent"])
    return {"order": order.pk, "sent_to": order.email}


@task(queue_name="emails", priority=50)
async def notify_team(message, *, channel="orders"):
    return f"{channel}: {message}"


@task(takes_context=True)
def charge(context, order_id):
    raise PaymentDeclined(f"order {order_id} declined (attempt {context.attempt})")
