from decimal import Decimal

from django.db import transaction
from django.http import JsonResponse
from django.views.decorators.http import require_POST

from shop.models import Order
from shop.tasks import send_receipt


@require_POST
@transaction.atomic
def place_order(request):
    total = Decimal(request.POST["total"])
    order = Order.objects.create(email=request.POST["email"], total=total)
    result = send_receipt.enqueue(order.pk)
    if total <= 0:
        # A check that fails after the enqueue rolls back the order and its task together:
        # the task never runs.
        transaction.set_rollback(True)
        return JsonResponse({"error": "the total must be positive"}, status=400)
    return JsonResponse({"order": order.pk, "receipt": result.id}, status=201)


def receipt_status(request, result_id):
    result = send_receipt.get_result(result_id)
    body = {"status": result.status, "attempts": result.attempts}
    if result.status == "SUCCESSFUL":
        body["sent"] = result.return_value
    return JsonResponse(body)
