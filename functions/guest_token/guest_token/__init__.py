"""AWS Lambda function that issues Genesys Cloud Web Messaging guest tokens to browser chat widgets."""
