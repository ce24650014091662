"""MongoDB in production (issue 30): the replica-set settings are set explicitly, and the URI can override them."""

from pymongo import ReadPreference

from web.extensions import mongo, replica_set_options


def test_writes_wait_for_a_majority_are_retried_and_reads_go_to_the_primary(app):
    client = mongo.client()
    assert client.write_concern.document == {"w": "majority"}
    assert client.options.retry_writes is True
    assert client.read_preference == ReadPreference.PRIMARY
    # Claims, ledger moves and reads that decide them go through this client: MongoEngine's documents
    # inherit its settings.
    from models import TimeClaim

    assert TimeClaim._get_collection().write_concern.document == {"w": "majority"}


def test_an_operators_uri_options_win():
    assert replica_set_options("mongodb://db1,db2/clinic?replicaSet=rs0&w=1&readPreference=primaryPreferred") == \
        {"retryWrites": True}
    assert replica_set_options("mongodb+srv://cluster.example/clinic") == \
        {"w": "majority", "retryWrites": True, "readPreference": "primary"}
