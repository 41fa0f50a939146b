terraform {
  required_version = ">= 1.5.0"

  required_providers {
    helm = {
      source  = "hashicorp/helm"
      version = "~> 2.17"
    }
  }

  # Remote state: fill in before `terraform init` (or pass the settings with
  # `terraform init -backend-config=backend.hcl`; see backend.hcl.example). Any backend works
  # (gcs, azurerm, kubernetes, ...): replace "s3" with yours.
  backend "s3" {
    # bucket         = "my-terraform-state"
    # key            = "anomaly-detector/terraform.tfstate"
    # region         = "eu-west-1"
    # dynamodb_table = "terraform-locks"
    # encrypt        = true
  }
}
