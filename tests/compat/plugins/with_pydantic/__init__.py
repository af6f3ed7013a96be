"""pydantic: coercion into a model and a validation error that names the field."""
__deps_dir__ = "deps"

import plugbox


@plugbox.export
def run():
    from typing import List
    from pydantic import BaseModel, ValidationError

    class Order(BaseModel):
        id: int
        items: List[str]
        total: float = 0.0

    order = Order(id="7", items=["a", "b"], total="2.5")
    try:
        Order(id="seven", items=[])
        error = None
    except ValidationError as e:
        error = [list(err["loc"]) for err in e.errors()]
    return {"order": order.dict(), "json": order.json(), "error_fields": error}
