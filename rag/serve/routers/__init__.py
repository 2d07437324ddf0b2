"""The API's routes, one module per group (its OpenAPI tag): service, questions, openai, admin."""
