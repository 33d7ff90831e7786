"""Order management: from a strategy's signal to an order at the venue, and the venue's events back."""

from engine.execution.order_manager import OrderListener, OrderManager

__all__ = ["OrderListener", "OrderManager"]
