variable "platform" {
  description = "Where the container runs: \"ecs_express\" (Amazon ECS Express Mode, for accounts that cannot create App Runner services) or \"apprunner\" (AWS App Runner, closed to new customers since 2026-04-30)."
  type        = string
  default     = "ecs_express"

  validation {
    condition     = contains(["ecs_express", "apprunner"], var.platform)
    error_message = "platform must be \"ecs_express\" or \"apprunner\"."
  }
}

variable "region" {
  description = "AWS region of the service, the ECR repository and the alarms."
  type        = string
  default     = "us-east-1"
}

variable "service_name" {
  description = "Name of the App Runner or ECS Express service; also prefixes the other resources' names."
  type        = string
  default     = "blog-api"
}

variable "image_tag" {
  description = "Tag of the image in the ECR repository to run (the deploy workflow passes the commit SHA)."
  type        = string
  default     = "latest"
}

variable "cpu" {
  description = "vCPU of one instance or task (256, 512, 1024, 2048 or 4096 CPU units)."
  type        = string
  default     = "1024"
}

variable "memory" {
  description = "Memory of one instance or task in MB (compatible with cpu, e.g. 2048 for 1 vCPU)."
  type        = string
  default     = "2048"
}

variable "min_instances" {
  description = "Instances (App Runner) or tasks (ECS Express) kept running even without traffic."
  type        = number
  default     = 1
}

variable "max_instances" {
  description = "Upper bound of instances or tasks the service scales out to."
  type        = number
  default     = 10
}

variable "max_concurrency" {
  description = "Concurrent requests one App Runner instance takes before App Runner scales out."
  type        = number
  default     = 100
}

variable "express_cpu_target" {
  description = "ECS Express: average CPU utilisation (percent) above which tasks are added, below which they are removed."
  type        = number
  default     = 60
}

variable "log_retention_days" {
  description = "ECS Express: days the container's log lines are kept in CloudWatch Logs."
  type        = number
  default     = 30
}

variable "gunicorn_workers" {
  description = "Gunicorn worker processes per instance (2 x vCPU + 1 is a good start)."
  type        = number
  default     = 3
}

variable "allowed_hosts" {
  description = "Extra host names Django accepts (comma-separated), e.g. your own domain; the CloudFront and App Runner names are always allowed."
  type        = string
  default     = ""
}

variable "secret_key_secret_arn" {
  description = "ARN of the Secrets Manager secret that holds DJANGO_SECRET_KEY."
  type        = string
}

variable "database_url_secret_arn" {
  description = "ARN of the Secrets Manager secret that holds DATABASE_URL (postgres://...)."
  type        = string
}

variable "metrics_tokens_secret_arn" {
  description = "ARN of the Secrets Manager secret that holds PRODKIT_METRICS_TOKENS (comma-separated bearer tokens)."
  type        = string
}

variable "enable_xray" {
  description = "Trace requests with AWS X-Ray on App Runner (sets ENABLE_XRAY and its observability configuration); an ECS Express task has no X-Ray daemon, so it stays off there."
  type        = bool
  default     = true
}

variable "enable_otel" {
  description = "Trace requests with OpenTelemetry, spans sent straight to X-Ray's OTLP endpoint signed with the instance role (sets ENABLE_OTEL and OTEL_AWS_SIGV4; needs CloudWatch Transaction Search). Turn enable_xray off with it."
  type        = bool
  default     = false
}

variable "enable_cloudwatch_metrics" {
  description = "Publish django-prodkit's request metrics to CloudWatch (sets ENABLE_CLOUDWATCH_METRICS); the ECS Express alarms watch them."
  type        = bool
  default     = true
}

variable "cloudwatch_dimensions" {
  description = "Extra CloudWatch dimensions on every django-prodkit metric (CLOUDWATCH_DIMENSIONS in the container), e.g. { Environment = \"production\" }; the alarms select by the same ones."
  type        = map(string)
  default     = {}
}

variable "cloudfront_price_class" {
  description = "CloudFront price class: PriceClass_100, PriceClass_200 or PriceClass_All."
  type        = string
  default     = "PriceClass_100"
}

variable "alarm_email" {
  description = "E-mail address subscribed to the alarms' SNS topic; empty for no subscription."
  type        = string
  default     = ""
}

variable "github_repository" {
  description = "owner/name of the GitHub repository whose deploy workflow may assume the deployment role through OIDC; empty to create no role."
  type        = string
  default     = ""
}

variable "secondary_region" {
  description = "ECS Express only: a second AWS region to run the service in, behind Route 53 failover (multi_region.tf); empty for one region. Needs failover_domain_name, hosted_zone_id and the secrets replicated to that region."
  type        = string
  default     = ""
}

variable "failover_domain_name" {
  description = "With secondary_region: the host name of the Route 53 failover pair (e.g. origin.api.example.com) that CloudFront uses as its origin."
  type        = string
  default     = ""
}

variable "hosted_zone_id" {
  description = "With secondary_region: the Route 53 hosted zone that holds failover_domain_name."
  type        = string
  default     = ""
}
