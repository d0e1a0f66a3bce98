"""The LLM Proxy's CDK app (Python). Importing this package does not load aws-cdk-lib."""
