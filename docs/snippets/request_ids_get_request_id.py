from django_prodkit.request_id import get_request_id

request_id = get_request_id()  # "3f1c2a9e-...", or None outside a request
